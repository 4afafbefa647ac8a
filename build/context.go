package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/ulikunitz/xz"
)

// buildContext is a build context unpacked on disk. The copy on disk is
// made readable and writable for us whatever the tar said (a 0000 file or
// a 0555 directory would otherwise stop the unpacking or the COPY), so the
// modes the tar gave are kept beside it.
type buildContext struct {
	root  string                 // the unpacked context
	modes map[string]fs.FileMode // clean relative name -> mode the tar gave
	times map[string]time.Time   // directories' mtimes, set once their children are written
}

// mode is the mode the context gave rel (perm and special bits), falling
// back to what is on disk.
func (c *buildContext) mode(rel string, fi fs.FileInfo) fs.FileMode {
	if m, ok := c.modes[rel]; ok {
		return m
	}
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// cleanEntryName turns a tar entry name into a clean relative name.
// Absolute names are taken as relative to the context root (as Docker
// does); names that climb out of it are refused.
func cleanEntryName(name string) (string, error) {
	c := path.Clean(strings.ReplaceAll(name, "\\", "/"))
	if strings.HasPrefix(c, "/") {
		c = strings.TrimLeft(path.Clean(c), "/")
		if c == "" {
			c = "."
		}
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errdefs.InvalidArgumentf("invalid build context: entry %q points outside the context", name)
	}
	return c, nil
}

// decompressor sniffs head and returns a reader of the decompressed stream
// (or r itself when head shows no known compression).
func decompressor(r io.Reader, head []byte) (io.Reader, func(), error) {
	noop := func() {}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, noop, err
		}
		return z, func() { _ = z.Close() }, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(r), noop, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		z, err := xz.NewReader(r)
		return z, noop, err
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, noop, err
		}
		return z, z.Close, nil
	}
	return r, noop, nil
}

// isTarHeader says whether b starts with a tar header block whose
// checksum is right: old v7 archives have no magic, so the checksum is
// the only sure sign.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	field := strings.TrimRight(strings.TrimSpace(string(b[148:156])), "\x00 ")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var sum int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	return sum == want
}

// openArchive looks at r and returns a tar reader over it when it is a
// tar (possibly compressed), or the plain stream and false otherwise.
func openArchive(r io.Reader) (tr *tar.Reader, plain *bufio.Reader, closeFn func(), err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	dr, closeFn, err := decompressor(br, head)
	if err != nil {
		return nil, nil, closeFn, errdefs.InvalidArgumentf("invalid build context: %v", err)
	}
	inner := br
	if dr != io.Reader(br) {
		inner = bufio.NewReaderSize(dr, 64<<10)
	}
	head, _ = inner.Peek(512)
	if isTarHeader(head) {
		return tar.NewReader(inner), nil, closeFn, nil
	}
	return nil, inner, closeFn, nil
}

// unpackContext writes the context read from r into dir (which must exist
// and be empty). A stream that is no archive is a bare Dockerfile, saved
// as dockerfile. Hostile entries are refused, nothing is ever written
// outside dir: every parent of an entry must be a real directory (never a
// symlink), and writes go through an os.Root as a second fence.
func unpackContext(ctx context.Context, r io.Reader, dir, dockerfile string) (*buildContext, error) {
	bc := newBuildContext(dir)
	return bc, unpackInto(ctx, r, bc, dockerfile, nil)
}

func newBuildContext(dir string) *buildContext {
	return &buildContext{root: dir, modes: map[string]fs.FileMode{}, times: map[string]time.Time{}}
}

// unpackInto is unpackContext into bc, calling fileDone (when not nil)
// with the clean name of each regular file once it is written in full.
func unpackInto(ctx context.Context, r io.Reader, bc *buildContext, dockerfile string, fileDone func(root *os.Root, name string)) error {
	root, err := os.OpenRoot(bc.root)
	if err != nil {
		return err
	}
	defer root.Close()

	tr, plain, closeFn, err := openArchive(r)
	defer closeFn()
	if err != nil {
		return err
	}
	if tr == nil {
		name, err := cleanEntryName(dockerfile)
		if err != nil || name == "." {
			return errdefs.InvalidArgumentf("invalid Dockerfile name %q", dockerfile)
		}
		if err := mkParents(root, name, bc); err != nil {
			return err
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, plain)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}

	kinds := map[string]byte{} // what each name written so far is
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.InvalidArgumentf("invalid build context: %v", err)
		}
		if err := unpackEntry(root, bc, kinds, hdr, tr); err != nil {
			return err
		}
		if fileDone != nil && (hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA) {
			if name, err := cleanEntryName(hdr.Name); err == nil {
				fileDone(root, name)
			}
		}
	}
	for name, t := range bc.times {
		_ = root.Chtimes(name, t, t)
	}
	return nil
}

func unpackEntry(root *os.Root, bc *buildContext, kinds map[string]byte, hdr *tar.Header, tr io.Reader) error {
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	perm := fs.FileMode(hdr.Mode) & fs.ModePerm
	if hdr.Mode&0o4000 != 0 {
		perm |= fs.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		perm |= fs.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		perm |= fs.ModeSticky
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return errdefs.InvalidArgumentf("invalid build context: entry %q is not a directory but names the root", hdr.Name)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return errdefs.InvalidArgumentf("invalid build context: %q is a device node or fifo, which a context may not hold", hdr.Name)
	default:
		return nil // pax global headers and the like carry no file
	}
	if err := mkParents(root, name, bc); err != nil {
		return err
	}
	existing, lerr := root.Lstat(name)
	if lerr == nil && !(hdr.Typeflag == tar.TypeDir && existing.IsDir()) {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
		for k := range kinds {
			if k == name || strings.HasPrefix(k, name+"/") {
				delete(kinds, k)
			}
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if lerr != nil || !existing.IsDir() {
			if err := root.Mkdir(name, 0o700); err != nil {
				return err
			}
		}
		if err := root.Chmod(name, (perm|0o700)&fs.ModePerm); err != nil {
			return err
		}
		bc.times[name] = hdr.ModTime
	case tar.TypeReg, tar.TypeRegA:
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return errdefs.InvalidArgumentf("invalid build context: %s: %v", hdr.Name, err)
		}
		if err := root.Chmod(name, (perm|0o600)&fs.ModePerm); err != nil {
			return err
		}
		_ = root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	case tar.TypeSymlink:
		// Kept as it is, pointing anywhere: it is only ever read through
		// securejoin, which keeps it inside the context.
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := cleanEntryName(hdr.Linkname)
		if err != nil {
			return err
		}
		if kinds[target] != tar.TypeReg {
			return errdefs.InvalidArgumentf("invalid build context: hard link %q to %q, which is no earlier file of the context", hdr.Name, hdr.Linkname)
		}
		if err := checkParents(root, target); err != nil {
			return err
		}
		if err := root.Link(target, name); err != nil {
			return err
		}
		perm = bc.modes[target]
	}
	kind := hdr.Typeflag
	if kind == tar.TypeRegA || kind == tar.TypeLink {
		kind = tar.TypeReg
	}
	kinds[name] = kind
	bc.modes[name] = perm
	return nil
}

// checkParents fails unless every parent of name is a real directory.
func checkParents(root *os.Root, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return errdefs.InvalidArgumentf("invalid build context: %q lies under %q, which is not a directory (a symlink is never written through)", name, p)
		}
	}
	return nil
}

// mkParents makes the missing parents of name and fails when one that
// exists is not a real directory: a symlink is never followed to write.
func mkParents(root *os.Root, name string, bc *buildContext) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(p, 0o755); err != nil {
				return err
			}
			bc.modes[p] = 0o755
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return errdefs.InvalidArgumentf("invalid build context: %q lies under %q, which is not a directory (a symlink is never written through)", name, p)
		}
	}
	return nil
}

// readDockerfile reads the Dockerfile at name in the context. Symlinks on
// the way are followed only inside the context.
func (c *buildContext) readDockerfile(name string) ([]byte, string, error) {
	rel, err := cleanEntryName(name)
	if err != nil || rel == "." {
		return nil, "", errdefs.InvalidArgumentf("invalid Dockerfile name %q", name)
	}
	tryNames := []string{rel}
	if name == "" || name == "Dockerfile" {
		tryNames = append(tryNames, "dockerfile")
	}
	for _, n := range tryNames {
		p, err := c.resolve(n)
		if err != nil {
			return nil, "", err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			if len(bytes.TrimSpace(b)) == 0 {
				return nil, "", errdefs.InvalidArgumentf("the Dockerfile (%s) cannot be empty", n)
			}
			return b, n, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("reading Dockerfile: %w", err)
		}
	}
	return nil, "", errdefs.NotFoundf("Cannot locate specified Dockerfile: %s", rel)
}
