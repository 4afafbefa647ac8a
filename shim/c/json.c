#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("lodge-shim: out of memory\n", stderr);
		abort();
	}
	return p;
}

/* --- buffers --- */

void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->len + n + 1)
			c *= 2;
		b->p = xrealloc(b->p, c);
		b->cap = c;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }
void buf_addc(struct buf *b, char c) { buf_add(b, &c, 1); }

void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		buf_add(b, tmp, n);
		return;
	}
	char *big = xrealloc(NULL, n + 1);
	va_start(ap, fmt);
	vsnprintf(big, n + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, n);
	free(big);
}

void buf_drop(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->p, b->p + n, b->len - n);
		b->len -= n;
	}
	if (b->p)
		b->p[b->len] = 0;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* --- reading --- */

struct parser {
	const char *s, *end;
	int depth;
};

static void skip_ws(struct parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static struct jval *new_val(enum jtype t)
{
	struct jval *v = xrealloc(NULL, sizeof *v);
	memset(v, 0, sizeof *v);
	v->type = t;
	return v;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

static void add_utf8(struct buf *b, unsigned cp)
{
	char u[4];
	if (cp < 0x80) {
		buf_addc(b, cp);
	} else if (cp < 0x800) {
		u[0] = 0xc0 | cp >> 6;
		u[1] = 0x80 | (cp & 0x3f);
		buf_add(b, u, 2);
	} else if (cp < 0x10000) {
		u[0] = 0xe0 | cp >> 12;
		u[1] = 0x80 | (cp >> 6 & 0x3f);
		u[2] = 0x80 | (cp & 0x3f);
		buf_add(b, u, 3);
	} else {
		u[0] = 0xf0 | cp >> 18;
		u[1] = 0x80 | (cp >> 12 & 0x3f);
		u[2] = 0x80 | (cp >> 6 & 0x3f);
		u[3] = 0x80 | (cp & 0x3f);
		buf_add(b, u, 4);
	}
}

static char *parse_string(struct parser *p)
{
	struct buf b = {0};
	if (p->s >= p->end || *p->s != '"')
		return NULL;
	p->s++;
	while (p->s < p->end && *p->s != '"') {
		unsigned char c = *p->s++;
		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			buf_addc(&b, c);
			continue;
		}
		if (p->s >= p->end)
			goto bad;
		c = *p->s++;
		switch (c) {
		case '"': case '\\': case '/': buf_addc(&b, c); break;
		case 'b': buf_addc(&b, '\b'); break;
		case 'f': buf_addc(&b, '\f'); break;
		case 'n': buf_addc(&b, '\n'); break;
		case 'r': buf_addc(&b, '\r'); break;
		case 't': buf_addc(&b, '\t'); break;
		case 'u': {
			unsigned cp, lo;
			if (p->end - p->s < 4 || hex4(p->s, &cp))
				goto bad;
			p->s += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p->end - p->s >= 6 && p->s[0] == '\\' &&
			    p->s[1] == 'u' && !hex4(p->s + 2, &lo) && lo >= 0xdc00 && lo < 0xe000) {
				p->s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;
			}
			add_utf8(&b, cp);
			break;
		}
		default:
			goto bad;
		}
	}
	if (p->s >= p->end)
		goto bad;
	p->s++;
	if (!b.p)
		buf_add(&b, "", 0);
	return b.p;
bad:
	buf_free(&b);
	return NULL;
}

static struct jval *parse_value(struct parser *p);

static struct jval *parse_container(struct parser *p, int obj)
{
	struct jval *v = new_val(obj ? J_OBJ : J_ARR);
	char close = obj ? '}' : ']';
	p->s++;
	skip_ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(p);
		if (obj) {
			key = parse_string(p);
			if (!key)
				goto bad;
			skip_ws(p);
			if (p->s >= p->end || *p->s != ':') {
				free(key);
				goto bad;
			}
			p->s++;
		}
		struct jval *item = parse_value(p);
		if (!item) {
			free(key);
			goto bad;
		}
		v->items = xrealloc(v->items, (v->n + 1) * sizeof *v->items);
		v->items[v->n] = item;
		if (obj) {
			v->keys = xrealloc(v->keys, (v->n + 1) * sizeof *v->keys);
			v->keys[v->n] = key;
		}
		v->n++;
		skip_ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return v;
		}
		goto bad;
	}
bad:
	json_free(v);
	return NULL;
}

static int lit(struct parser *p, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n))
		return 0;
	p->s += n;
	return 1;
}

static struct jval *parse_value(struct parser *p)
{
	skip_ws(p);
	if (p->s >= p->end || ++p->depth > 64)
		return NULL;
	struct jval *v = NULL;
	char c = *p->s;
	if (c == '{' || c == '[') {
		v = parse_container(p, c == '{');
	} else if (c == '"') {
		char *s = parse_string(p);
		if (s) {
			v = new_val(J_STR);
			v->str = s;
		}
	} else if (lit(p, "true")) {
		v = new_val(J_BOOL);
		v->b = 1;
	} else if (lit(p, "false")) {
		v = new_val(J_BOOL);
	} else if (lit(p, "null")) {
		v = new_val(J_NULL);
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		char tmp[64];
		size_t n = 0;
		while (p->s + n < p->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", p->s[n]))
			n++;
		memcpy(tmp, p->s, n);
		tmp[n] = 0;
		char *e;
		double d = strtod(tmp, &e);
		if (e == tmp + n && n > 0) {
			v = new_val(J_NUM);
			v->num = d;
			p->s += n;
		}
	}
	p->depth--;
	return v;
}

struct jval *json_parse(const char *s, size_t len)
{
	struct parser p = {s, s + len, 0};
	struct jval *v = parse_value(&p);
	skip_ws(&p);
	if (v && p.s != p.end) {
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct jval *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

struct jval *json_get(const struct jval *o, const char *key)
{
	if (!o || o->type != J_OBJ)
		return NULL;
	/* The last of duplicate keys wins, as in Go. */
	for (size_t i = o->n; i-- > 0;)
		if (!strcmp(o->keys[i], key))
			return o->items[i];
	return NULL;
}

const char *json_str(const struct jval *o, const char *key, const char *def)
{
	struct jval *v = json_get(o, key);
	return v && v->type == J_STR ? v->str : def;
}

int64_t json_int(const struct jval *o, const char *key, int64_t def)
{
	struct jval *v = json_get(o, key);
	return v && v->type == J_NUM ? (int64_t)v->num : def;
}

int json_bool(const struct jval *o, const char *key)
{
	struct jval *v = json_get(o, key);
	return v && v->type == J_BOOL && v->b;
}

/* --- writing --- */

/* utf8_len is the length of the valid UTF-8 sequence at s (n bytes
 * left), 0 when it is not one. */
static int utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	int len;
	unsigned min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, min = 0x80, c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, min = 0x800, c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	if (n < (size_t)len)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
		return 0;
	*cp = c;
	return len;
}

void json_add_str(struct buf *b, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t start = 0, i = 0;
	buf_addc(b, '"');
	while (i < n) {
		unsigned char c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < 0x80) {
			i++;
			continue;
		}
		unsigned cp = 0;
		int l = c < 0x80 ? 1 : utf8_len(s + i, n - i, &cp);
		if (c >= 0x80 && l > 0 && cp != 0x2028 && cp != 0x2029) {
			i += l;
			continue;
		}
		buf_add(b, s + start, i - start);
		if (c < 0x80) {
			switch (c) {
			case '"': buf_adds(b, "\\\""); break;
			case '\\': buf_adds(b, "\\\\"); break;
			case '\n': buf_adds(b, "\\n"); break;
			case '\r': buf_adds(b, "\\r"); break;
			case '\t': buf_adds(b, "\\t"); break;
			default: {
				char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
				buf_add(b, e, 6);
			}
			}
			i++;
		} else if (l > 0) { /* U+2028 or U+2029 */
			buf_adds(b, cp == 0x2028 ? "\\u2028" : "\\u2029");
			i += l;
		} else {
			buf_adds(b, "\\ufffd");
			i++;
		}
		start = i;
	}
	buf_add(b, s + start, n - start);
	buf_addc(b, '"');
}
