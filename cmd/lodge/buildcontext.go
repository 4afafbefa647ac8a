package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// The build context as the docker CLI sends it: the directory's files as
// a tar, less what .dockerignore excludes, owned by root (COPY makes its
// files root's unless --chown says otherwise).

// readIgnore reads dir/.dockerignore's patterns, with the rules the docker
// CLI and lodged's builder use (patternmatcher's ignorefile); none when it
// is absent.
func readIgnore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ignorefile.ReadAll(f)
}

// contextOptions shape writeContext.
type contextOptions struct {
	// keep are paths (relative to the context) sent even when ignored:
	// the Dockerfile and .dockerignore, as the docker CLI does.
	keep []string
	// extra are files from outside the context, added by name: a
	// Dockerfile given with -f that lies elsewhere.
	extra map[string]string
}

// writeContext writes dir as a tar to w, honouring its .dockerignore.
func writeContext(w io.Writer, dir string, o contextOptions) error {
	patterns, err := readIgnore(dir)
	if err != nil {
		return err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf(".dockerignore: %w", err)
	}
	keep := map[string]bool{}
	for _, k := range o.keep {
		keep[filepath.Clean(k)] = true
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if !keep[rel] {
			skip, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
			if err != nil {
				return err
			}
			if skip {
				// A directory whose contents an exception (!path) may
				// bring back is walked; else none of it goes.
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		return addFile(tw, p, filepath.ToSlash(rel))
	})
	if err != nil {
		return err
	}
	for name, src := range o.extra {
		if err := addFile(tw, src, name); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addFile writes one file, directory or symlink as name, owned by root.
// Sockets, pipes and devices have no place in an image: they are left out.
func addFile(tw *tar.Writer, p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	case fi.IsDir(), fi.Mode().IsRegular():
	default:
		return nil
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	h.Name = name
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.Format = tar.FormatPAX
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
