package build

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/lodge-containers/lodge/errdefs"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// resolve returns the host path of rel inside the context, symlinks
// resolved as if the context were /, so none leads out of it.
func (c *buildContext) resolve(rel string) (string, error) {
	return securejoin.SecureJoin(c.root, rel)
}

// ignorePatterns reads <dockerfile>.dockerignore, else .dockerignore.
// Neither is not an error: nothing is ignored.
func (c *buildContext) ignorePatterns(dockerfile string) ([]string, error) {
	for _, name := range []string{dockerfile + ".dockerignore", ".dockerignore"} {
		p, err := c.resolve(name)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, errdefs.InvalidArgumentf("error reading %s: %v", name, err)
		}
		return patterns, nil
	}
	return nil, nil
}

// applyIgnore removes from the context what the ignore patterns exclude,
// as if the client had not sent it: COPY then cannot see it. The
// Dockerfile and the ignore file go too when a pattern names them (Docker
// does the same), so they must have been read before.
func (c *buildContext) applyIgnore(patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return errdefs.InvalidArgumentf("invalid .dockerignore: %v", err)
	}
	parents := map[string]patternmatcher.MatchInfo{}
	var emptyIfExcluded []string
	err = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.root, p)
		if rel == "." {
			return nil
		}
		parentInfo := parents[filepath.Dir(rel)]
		matched, info, err := pm.MatchesUsingParentResults(rel, parentInfo)
		if err != nil {
			return errdefs.InvalidArgumentf("invalid .dockerignore: %v", err)
		}
		if d.IsDir() {
			parents[rel] = info
		}
		if !matched {
			return nil
		}
		if d.IsDir() {
			if !pm.Exclusions() {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
				return filepath.SkipDir
			}
			// An exception (!pattern) may keep something inside.
			emptyIfExcluded = append(emptyIfExcluded, p)
			return nil
		}
		return os.Remove(p)
	})
	if err != nil {
		return err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(emptyIfExcluded)))
	for _, p := range emptyIfExcluded {
		_ = os.Remove(p) // fails, as it should, when something was kept
	}
	return nil
}

// isPredefinedArg says whether name is one of the proxy build args every
// Dockerfile may use without declaring them.
func isPredefinedArg(name string) bool {
	switch strings.ToUpper(name) {
	case "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY":
		return true
	}
	return false
}
