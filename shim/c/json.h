/* A small JSON reader and writer for lodge-shim's handoff and control
 * protocol (shim/proto.go): objects, arrays, strings, numbers, booleans
 * and null, parsed into a tree that lives as long as the shim does. */
#ifndef LODGE_SHIM_JSON_H
#define LODGE_SHIM_JSON_H

#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype type;
	int b;
	double num;
	char *str;          /* J_STR, NUL-terminated (NULs inside are cut) */
	struct jval **items; /* J_ARR and J_OBJ values */
	char **keys;        /* J_OBJ keys */
	size_t n;
};

/* json_parse parses s (len bytes); NULL when it is not one JSON value. */
struct jval *json_parse(const char *s, size_t len);
void json_free(struct jval *v);

/* json_get is the member key of object o, NULL when absent or o is not an
 * object. The accessors give def for a missing or mistyped value. */
struct jval *json_get(const struct jval *o, const char *key);
const char *json_str(const struct jval *o, const char *key, const char *def);
int64_t json_int(const struct jval *o, const char *key, int64_t def);
int json_bool(const struct jval *o, const char *key);

/* A growable byte buffer. */
struct buf {
	char *p;
	size_t len, cap;
};

void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_drop(struct buf *b, size_t n); /* drops the first n bytes */
void buf_free(struct buf *b);

/* json_add_str appends s as a JSON string the way Go's encoding/json
 * does: <, >, & and U+2028/9 escaped, invalid UTF-8 as U+FFFD. */
void json_add_str(struct buf *b, const char *s, size_t n);

#endif
