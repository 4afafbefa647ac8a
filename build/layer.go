package build

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/lodge-containers/lodge/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// targetFS is a read-only view of the image a step adds to, to see what
// exists there. An empty root is scratch: nothing exists.
type targetFS struct {
	root    string
	release func()
}

func (s *stageRun) mountTarget(ctx context.Context) (*targetFS, error) {
	if s.img.ID == "" {
		return &targetFS{release: func() {}}, nil
	}
	root, release, err := s.b.backend.Mount(ctx, s.img.ID)
	if err != nil {
		return nil, err
	}
	return &targetFS{root: root, release: release}, nil
}

// resolve turns an absolute path in the image into its clean relative
// form with the symlinks of the image resolved inside the image, so a
// layer entry never lands under a symlink (which would shadow it).
func (t *targetFS) resolve(p string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+p), "/")
	if t.root == "" || clean == "" {
		return clean, nil
	}
	full, err := securejoin.SecureJoin(t.root, clean)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(t.root, full)
	if err != nil {
		return "", err
	}
	if rel == "." {
		rel = ""
	}
	return filepath.ToSlash(rel), nil
}

// lstat looks at a resolved relative path.
func (t *targetFS) lstat(rel string) (fs.FileInfo, error) {
	if t.root == "" {
		if rel == "" {
			return nil, nil // the root of scratch exists
		}
		return nil, fs.ErrNotExist
	}
	return os.Lstat(filepath.Join(t.root, rel))
}

func (t *targetFS) readFile(p string) ([]byte, error) {
	if t.root == "" {
		return nil, fs.ErrNotExist
	}
	full, err := securejoin.SecureJoin(t.root, p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(full)
}

// layerWriter writes a layer tar of new files only: a directory that
// exists in the target keeps its owner and mode, since the tar has no
// entry for it; missing parents are made 0755.
type layerWriter struct {
	t        *targetFS
	tw       *tar.Writer
	owner    *idPair // owner of the parents it makes; nil is root
	made     map[string]bool
	resolved map[string]string
	now      time.Time
}

type idPair struct{ uid, gid int }

func newLayerWriter(t *targetFS, tw *tar.Writer, owner *idPair) *layerWriter {
	return &layerWriter{t: t, tw: tw, owner: owner, made: map[string]bool{}, resolved: map[string]string{}, now: time.Now().UTC()}
}

func (w *layerWriter) resolveDir(dir string) (string, error) {
	if r, ok := w.resolved[dir]; ok {
		return r, nil
	}
	r, err := w.t.resolve(dir)
	if err != nil {
		return "", err
	}
	w.resolved[dir] = r
	return r, nil
}

// resolvePath resolves p's parent in the target, keeping its last name.
func (w *layerWriter) resolvePath(p string) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return "", nil
	}
	dir, err := w.resolveDir(path.Dir(p))
	if err != nil {
		return "", err
	}
	return path.Join(dir, path.Base(p)), nil
}

// isDir says whether p is a directory in the target or in this layer.
func (w *layerWriter) isDir(p string) bool {
	rel, err := w.t.resolve(p)
	if err != nil {
		return false
	}
	if w.made[rel] {
		return true
	}
	fi, err := w.t.lstat(rel)
	return err == nil && (fi == nil || fi.IsDir())
}

// missingDirs lists the components of dir that neither the target nor
// this layer has yet, outermost first.
func (w *layerWriter) missingDirs(dir string) ([]string, error) {
	rel, err := w.resolveDir(path.Clean("/" + dir))
	if err != nil {
		return nil, err
	}
	if rel == "" {
		return nil, nil
	}
	var missing []string
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if w.made[p] {
			continue
		}
		fi, err := w.t.lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, p)
		case err != nil:
			return nil, err
		case len(missing) == 0 && fi != nil && !fi.IsDir():
			return nil, errdefs.InvalidArgumentf("cannot create %s: /%s exists and is not a directory", dir, p)
		}
	}
	return missing, nil
}

// mkdirAll adds entries for the missing directories of dir.
func (w *layerWriter) mkdirAll(dir string) error {
	missing, err := w.missingDirs(dir)
	if err != nil {
		return err
	}
	for _, p := range missing {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755, ModTime: w.now}
		if w.owner != nil {
			hdr.Uid, hdr.Gid = w.owner.uid, w.owner.gid
		}
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		w.made[p] = true
	}
	return nil
}

// add writes one entry at image path p (parents made as needed). A
// directory that already exists is left alone.
func (w *layerWriter) add(p string, hdr *tar.Header, body io.Reader) error {
	rel, err := w.resolvePath(p)
	if err != nil {
		return err
	}
	if rel == "" {
		return nil // the root itself keeps its metadata
	}
	if err := w.mkdirAll(path.Dir("/" + rel)); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		if w.made[rel] {
			return nil
		}
		if fi, err := w.t.lstat(rel); err == nil && (fi == nil || fi.IsDir()) {
			return nil
		}
		w.made[rel] = true
		hdr.Name = rel + "/"
	} else {
		hdr.Name = rel
	}
	hdr.Uname, hdr.Gname = "", ""
	hdr.PAXRecords = nil
	hdr.Xattrs = nil //nolint:staticcheck // cleared so no stale xattrs reach the layer
	hdr.Format = tar.FormatUnknown
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if body != nil && hdr.Typeflag == tar.TypeReg {
		if _, err := io.Copy(w.tw, body); err != nil {
			return err
		}
	}
	return nil
}

// apply streams the layer fn writes into Backend.Apply on the current
// image.
func (s *stageRun) apply(ctx context.Context, t *targetFS, owner *idPair, cfg dockerspec.DockerOCIImage, fn func(*layerWriter) error) (Image, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := fn(newLayerWriter(t, tw, owner))
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	img, err := s.b.backend.Apply(ctx, s.img, pr, cfg)
	pr.CloseWithError(errors.New("layer no longer read"))
	if werr := <-done; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return Image{}, werr
	}
	return img, err
}
