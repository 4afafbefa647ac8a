package build

import (
	"archive/tar"
	"bufio"
	"context"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/lodge-containers/lodge/errdefs"
)

// addArchive unpacks the tar archive at host (possibly compressed) into
// dest. It reports false when the file is no archive.
func addArchive(ctx context.Context, w *layerWriter, host, dest string, owner *idPair, mode *fs.FileMode) (bool, error) {
	f, err := os.Open(host)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(512)
	dr, closeFn, err := decompressor(br, head)
	if err != nil {
		return false, nil
	}
	defer closeFn()
	inner := bufio.NewReaderSize(dr, 64<<10)
	head, _ = inner.Peek(512)
	if !isTarHeader(head) {
		return false, nil
	}
	if err := w.mkdirAll(dest); err != nil {
		return true, err
	}
	tr := tar.NewReader(inner)
	for {
		if err := ctx.Err(); err != nil {
			return true, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, errdefs.InvalidArgumentf("unpacking %s: %v", path.Base(host), err)
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return true, err
		}
		if name == "." {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			hdr.Typeflag = tar.TypeReg
		case tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			target, err := cleanEntryName(hdr.Linkname)
			if err != nil {
				return true, err
			}
			if hdr.Linkname, err = w.resolvePath(path.Join(dest, target)); err != nil {
				return true, err
			}
		default:
			continue // device nodes cannot be made by an unprivileged user
		}
		if mode != nil {
			hdr.Mode = tarMode(*mode)
		}
		if owner != nil {
			hdr.Uid, hdr.Gid = owner.uid, owner.gid
		}
		if err := w.add(path.Join(dest, name), hdr, tr); err != nil {
			return true, err
		}
	}
}
