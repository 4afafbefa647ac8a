package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// copyRequest is a COPY or an ADD, flags expanded.
type copyRequest struct {
	name     string // COPY or ADD
	sd       instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	add      bool
	unpack   bool
	checksum string
	parents  bool
	excludes []string
}

// copySource is one resolved source of a COPY or ADD.
type copySource struct {
	root    string      // the tree it lies in: the context, a mounted image, a download dir
	rel     string      // its path in root, symlinks resolved inside root
	base    string      // the name it takes in a destination directory
	fi      fs.FileInfo // nil for heredoc data
	context bool        // from the build context: owned by root, modes as the context gave them
	url     bool        // downloaded: never unpacked
	data    *string     // heredoc content
	mtime   time.Time   // downloads: Last-Modified
}

func (c copySource) host() string { return filepath.Join(c.root, filepath.FromSlash(c.rel)) }

// copy runs a COPY or ADD step.
func (s *stageRun) copy(ctx context.Context, req copyRequest, out *stepOut) error {
	failed := func(err error) error {
		if err == nil {
			return nil
		}
		return &classedPrefix{prefix: req.name + " failed: ", err: err}
	}
	if req.parents || len(req.excludes) > 0 {
		return errdefs.NotImplementedf("%s --parents and --exclude are not supported", req.name)
	}
	if err := s.expandHeredocs(&req.sd); err != nil {
		return err
	}

	root, fromContext, fromID, release, err := s.copyRoot(ctx, req.from, out)
	if err != nil {
		return failed(err)
	}
	defer release()

	var sources []copySource
	for _, src := range req.sd.SourcePaths {
		switch {
		case req.add && (strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")):
			cs, err := s.download(ctx, src, req.checksum)
			if err != nil {
				return failed(err)
			}
			sources = append(sources, cs)
		case req.add && isGitURL(src):
			return errdefs.NotImplementedf("ADD of a git repository is not supported: %s", src)
		default:
			found, err := resolveSources(root, src, fromContext)
			if err != nil {
				return failed(err)
			}
			sources = append(sources, found...)
		}
	}
	for i := range req.sd.SourceContents {
		sc := req.sd.SourceContents[i]
		sources = append(sources, copySource{base: path.Base(sc.Path), data: &sc.Data, context: true})
	}
	if len(sources) == 0 {
		return failed(errdefs.InvalidArgumentf("no source files were specified"))
	}
	dest := req.sd.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if len(sources) > 1 && !destIsDir {
		return errdefs.InvalidArgumentf("When using %s with more than one source file, the destination must be a directory and end with a /", req.name)
	}
	if !path.IsAbs(dest) {
		wd := s.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}

	var mode *fs.FileMode
	if req.chmod != "" {
		m, err := strconv.ParseUint(req.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return errdefs.InvalidArgumentf("invalid --chmod=%s: only octal modes are supported", req.chmod)
		}
		fm := octalMode(int64(m))
		mode = &fm
	}

	// What the step is: its sources' content (names, modes, owners,
	// bytes), where it goes, and how.
	hashes := make([]string, len(sources))
	for i, src := range sources {
		if hashes[i], err = hashSource(s.bc, src); err != nil {
			return failed(err)
		}
	}
	srcHash := hashes[0]
	if len(hashes) > 1 {
		sum := sha256.Sum256([]byte(strings.Join(hashes, ",")))
		srcHash = "multi:" + hex.EncodeToString(sum[:])
	}
	chownComment := ""
	if req.chown != "" {
		chownComment = "--chown=" + req.chown + " "
	}
	createdBy := fmt.Sprintf("%s #(nop) %s %s%s in %s ", strings.Join(s.shell(), " "), req.name, chownComment, srcHash, req.sd.DestPath)
	key := chainKey(s.key, "copy", createdBy, dest, req.chmod, fromID, strconv.FormatBool(req.unpack), req.checksum)

	return s.layer(ctx, out, key, createdBy, func(ctx context.Context, cfg dockerspec.DockerOCIImage) (Image, error) {
		t, err := s.mountTarget(ctx)
		if err != nil {
			return Image{}, err
		}
		defer t.release()
		var owner *idPair
		if req.chown != "" {
			ids, err := lookupOwner(t, req.chown)
			if err != nil {
				return Image{}, failed(err)
			}
			owner = &ids
		}
		img, err := s.apply(ctx, t, owner, cfg, func(w *layerWriter) error {
			for _, src := range sources {
				if err := copyOne(ctx, w, s.bc, src, dest, destIsDir, req, owner, mode); err != nil {
					return err
				}
			}
			return nil
		})
		return img, failed(err)
	})
}

// classedPrefix prefixes a message and keeps the error's class.
type classedPrefix struct {
	prefix string
	err    error
}

func (e *classedPrefix) Error() string { return e.prefix + e.err.Error() }
func (e *classedPrefix) Unwrap() error { return e.err }

func octalMode(m int64) fs.FileMode {
	fm := fs.FileMode(m) & fs.ModePerm
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

func isGitURL(s string) bool {
	return strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "git://") || strings.HasSuffix(strings.SplitN(s, "#", 2)[0], ".git") && strings.Contains(s, "://")
}

// expandHeredocs expands COPY <<EOF contents that asked for it, the raw
// way Docker does (quotes and escapes kept).
func (s *stageRun) expandHeredocs(sd *instructions.SourcesAndDest) error {
	raw := shell.NewLex(s.plan.escape)
	raw.RawQuotes = true
	raw.RawEscapes = true
	env := s.env()
	return sd.ExpandRaw(func(word string) (string, error) {
		res, _, err := raw.ProcessWord(word, env)
		return res, err
	})
}

// copyRoot is where a COPY's sources are: the context, or the root of
// the stage or image --from names.
func (s *stageRun) copyRoot(ctx context.Context, from string, out io.Writer) (root string, fromContext bool, fromID string, release func(), err error) {
	noop := func() {}
	if from == "" {
		if err := s.ctxReady(ctx); err != nil {
			return "", false, "", noop, err
		}
		return s.bc.root, true, "", noop, nil
	}
	ref, _, err := shell.NewLex(s.plan.escape).ProcessWord(from, shell.EnvsFromSlice(s.plan.metaEnv))
	if err != nil {
		return "", false, "", noop, errdefs.InvalidArgumentf("--from=%s: %v", from, err)
	}
	sp, err := s.plan.stageRef(ref, s.sp.index)
	if err != nil {
		return "", false, "", noop, err
	}
	var id string
	if sp != nil {
		st, err := s.stageResult(ctx, sp)
		if err != nil {
			return "", false, "", noop, err
		}
		id = st.img.ID
	} else {
		img, err := s.b.backend.Base(ctx, ref, s.opts.Pull, out)
		if err != nil {
			return "", false, "", noop, err
		}
		id = img.ID
		fromID = "image:" + img.ID
	}
	if id == "" {
		// A stage from scratch with no layer yet: nothing to copy from.
		dir, err := os.MkdirTemp(s.work, "scratch-")
		if err != nil {
			return "", false, "", noop, err
		}
		return dir, false, fromID, noop, nil
	}
	root, release, err = s.b.backend.Mount(ctx, id)
	if err != nil {
		return "", false, "", noop, err
	}
	return root, false, fromID, release, nil
}

func containsWildcards(s string) bool {
	return strings.ContainsAny(s, "*?[")
}

// resolveSources finds src in root: one path, or what a glob matches.
// Symlinks are resolved as if root were /, so none leads out of it.
func resolveSources(root, src string, fromContext bool) ([]copySource, error) {
	clean := strings.TrimPrefix(path.Clean("/"+src), "/")
	if clean == "" {
		clean = "."
	}
	if !containsWildcards(clean) {
		full, err := securejoin.SecureJoin(root, clean)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(full)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errdefs.NotFoundf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
			}
			return nil, err
		}
		rel, _ := filepath.Rel(root, full)
		return []copySource{{root: root, rel: filepath.ToSlash(rel), base: path.Base("/" + clean), fi: fi, context: fromContext}}, nil
	}

	// Walk from the longest prefix without wildcards.
	parts := strings.Split(clean, "/")
	i := 0
	for i < len(parts) && !containsWildcards(parts[i]) {
		i++
	}
	prefix := strings.Join(parts[:i], "/")
	base, err := securejoin.SecureJoin(root, prefix)
	if err != nil {
		return nil, err
	}
	var found []copySource
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		r, _ := filepath.Rel(base, p)
		name := path.Join(prefix, filepath.ToSlash(r))
		ok, err := path.Match(clean, name)
		if err != nil {
			return errdefs.InvalidArgumentf("bad pattern %q: %v", src, err)
		}
		if !ok {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		found = append(found, copySource{root: root, rel: filepath.ToSlash(rel), base: path.Base(name), fi: fi, context: fromContext})
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, errdefs.NotFoundf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
	}
	return found, nil
}

// entryMeta is what a copied entry carries besides its bytes.
func entryMeta(bc *buildContext, src copySource, rel string, fi fs.FileInfo) (fs.FileMode, int, int) {
	if src.context && src.root == bc.root {
		return bc.mode(rel, fi), 0, 0
	}
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if src.url {
		return mode, 0, 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return mode, int(st.Uid), int(st.Gid)
	}
	return mode, 0, 0
}

// hashSource digests a source's names, types, modes, owners, link
// targets and bytes: what a COPY of it would put in the image.
func hashSource(bc *buildContext, src copySource) (string, error) {
	h := sha256.New()
	if src.data != nil {
		fmt.Fprintf(h, "heredoc:%d:%s", len(*src.data), *src.data)
		return "file:" + hex.EncodeToString(h.Sum(nil)), nil
	}
	kind := "file"
	if src.fi.IsDir() {
		kind = "dir"
	}
	err := walkSource(src, func(rel, host string, fi fs.FileInfo) error {
		mode, uid, gid := entryMeta(bc, src, rel, fi)
		fmt.Fprintf(h, "%d:%s|%o|%o|%d|%d|", len(rel), rel, fi.Mode().Type(), mode, uid, gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(host)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%d:%s", len(link), link)
		case fi.Mode().IsRegular():
			return hashFile(h, host, fi.Size())
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h hash.Hash, host string, size int64) error {
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(h, "%d:", size)
	_, err = io.Copy(h, f)
	return err
}

// walkSource visits src and, for a directory, everything under it in
// lexical order; rel is relative to src.root. Symlinks are not followed.
func walkSource(src copySource, fn func(rel, host string, fi fs.FileInfo) error) error {
	if !src.fi.IsDir() {
		return fn(src.rel, src.host(), src.fi)
	}
	return filepath.WalkDir(src.host(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src.root, p)
		return fn(filepath.ToSlash(rel), p, fi)
	})
}

// copyOne writes one source into the layer, with Docker's rules: a
// directory's contents go into dest; a file goes to dest, or into it when
// dest ends in / or is a directory; ADD unpacks local archives into dest.
func copyOne(ctx context.Context, w *layerWriter, bc *buildContext, src copySource, dest string, destIsDir bool, req copyRequest, owner *idPair, mode *fs.FileMode) error {
	meta := func(hdr *tar.Header, m fs.FileMode, uid, gid int) {
		hdr.Mode = tarMode(m)
		if mode != nil {
			hdr.Mode = tarMode(*mode)
		}
		hdr.Uid, hdr.Gid = uid, gid
		if owner != nil {
			hdr.Uid, hdr.Gid = owner.uid, owner.gid
		}
	}
	if src.data != nil {
		target := dest
		if destIsDir || w.isDir(dest) {
			target = path.Join(dest, src.base)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Size: int64(len(*src.data)), ModTime: w.now}
		meta(hdr, 0o644, 0, 0)
		return w.add(target, hdr, strings.NewReader(*src.data))
	}
	if src.fi.IsDir() {
		return walkSource(src, func(rel, host string, fi fs.FileInfo) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sub := strings.TrimPrefix(strings.TrimPrefix(rel, src.rel), "/")
			if src.rel == "." {
				sub = rel
				if rel == "." {
					sub = ""
				}
			}
			return addHostEntry(w, bc, src, rel, host, fi, path.Join(dest, sub), meta)
		})
	}
	target := dest
	if destIsDir || w.isDir(dest) {
		target = path.Join(dest, src.base)
	}
	if req.add && req.unpack && !src.url && src.fi.Mode().IsRegular() {
		ok, err := addArchive(ctx, w, src.host(), dest, owner, mode)
		if ok || err != nil {
			return err
		}
	}
	return addHostEntry(w, bc, src, src.rel, src.host(), src.fi, target, meta)
}

func tarMode(m fs.FileMode) int64 {
	out := int64(m & fs.ModePerm)
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

func addHostEntry(w *layerWriter, bc *buildContext, src copySource, rel, host string, fi fs.FileInfo, target string, meta func(*tar.Header, fs.FileMode, int, int)) error {
	m, uid, gid := entryMeta(bc, src, rel, fi)
	hdr := &tar.Header{ModTime: fi.ModTime()}
	if !src.mtime.IsZero() || src.url {
		hdr.ModTime = src.mtime
	}
	switch {
	case fi.IsDir():
		hdr.Typeflag = tar.TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(host)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, link
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	default:
		return nil // sockets and the like are not copied
	}
	meta(hdr, m, uid, gid)
	if hdr.Typeflag == tar.TypeSymlink {
		hdr.Mode = 0o777
	}
	if hdr.Typeflag != tar.TypeReg {
		return w.add(target, hdr, nil)
	}
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	return w.add(target, hdr, io.LimitReader(f, fi.Size()))
}

// sortedKeys is for stable output of maps.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
