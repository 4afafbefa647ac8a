package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/lodge-containers/lodge/rootdir"
)

// splitCopyArg reads CONTAINER:PATH; a local path (even one holding a
// colon, when it starts with / or .) has no container.
func splitCopyArg(arg string) (ctr, p string) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	c, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return c, p
}

// cpCmd is `lodge cp`: files between a container and here, either way,
// or a tar on stdin/stdout with -.
func cpCmd(a *app) *cobra.Command {
	var archive bool
	cmd := &cobra.Command{
		Use: "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  lodge cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH", Short: "Copy files between a container and the local filesystem",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcC, src := splitCopyArg(args[0])
			dstC, dst := splitCopyArg(args[1])
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch {
			case srcC != "" && dstC == "":
				return a.explain(copyOut(ctx, c, srcC, src, dst, a.out))
			case srcC == "" && dstC != "":
				return a.explain(copyIn(ctx, c, src, dstC, dst, archive))
			}
			return fmt.Errorf("one of the two paths must name a container (CONTAINER:PATH), and only one")
		},
	}
	cmd.Flags().BoolVarP(&archive, "archive", "a", false, "keep the files' owners (uid:gid)")
	return cmd
}

// copyOut writes p of container ctr to dst: into it when it is a
// directory, else as dst; - is the tar itself on out.
func copyOut(ctx context.Context, c *client.Client, ctr, p, dst string, out io.Writer) error {
	res, err := c.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: p})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dst == "-" {
		_, err := io.Copy(out, res.Content)
		return err
	}
	dir, name := dst, res.Stat.Name
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		dir, name = filepath.Dir(dst), filepath.Base(dst)
	}
	return untarHere(ctx, dir, renameTop(res.Content, res.Stat.Name, name))
}

// untarHere extracts a tar into the local directory dir, as the user.
func untarHere(ctx context.Context, dir string, rd io.Reader) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	r, err := rootdir.Open(abs)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Untar(ctx, "/", rd, rootdir.UntarOptions{Owner: &rootdir.Owner{UID: os.Getuid(), GID: os.Getgid()}})
}

// renameTop renames a tar's top entry from old to name, as cp names its
// copy after the destination.
func renameTop(rd io.Reader, old, name string) io.Reader {
	if old == name {
		return rd
	}
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(rd), tar.NewWriter(pw)
		var err error
		for {
			var h *tar.Header
			if h, err = tr.Next(); err != nil {
				break
			}
			if h.Name == old || strings.HasPrefix(h.Name, old+"/") {
				h.Name = name + strings.TrimPrefix(h.Name, old)
			}
			if err = tw.WriteHeader(h); err != nil {
				break
			}
			if _, err = io.Copy(tw, tr); err != nil {
				break
			}
		}
		if err == io.EOF {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// copyIn puts the local src (or a tar on stdin, for -) at p in container
// ctr: into p when it is a directory, else as p.
func copyIn(ctx context.Context, c *client.Client, src, ctr, p string, keepOwners bool) error {
	opts := client.CopyToContainerOptions{DestinationPath: p, CopyUIDGID: keepOwners}
	if src == "-" {
		opts.Content = os.Stdin
		_, err := c.CopyToContainer(ctx, ctr, opts)
		return err
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(abs); err != nil {
		return err
	}
	name := filepath.Base(abs)
	st, err := c.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: p})
	if err != nil || !st.Stat.Mode.IsDir() {
		if strings.HasSuffix(p, "/") {
			return fmt.Errorf("%s: no such directory in %s", p, ctr)
		}
		opts.DestinationPath = path.Dir(path.Clean("/" + p))
		name = path.Base(p)
	}
	root, err := rootdir.Open(filepath.Dir(abs))
	if err != nil {
		return err
	}
	defer root.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(root.Tar(ctx, "/"+filepath.Base(abs), pw, rootdir.TarOptions{})) }()
	opts.Content = renameTop(pr, filepath.Base(abs), name)
	_, err = c.CopyToContainer(ctx, ctr, opts)
	_ = pr.Close() // an io.PipeReader's Close returns nil
	return err
}

// diffCmd is `lodge diff`: what a container changed, as A, C or D lines.
func diffCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use: "diff CONTAINER", Short: "Show a container's changes to its image's files", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return a.explain(err)
			}
			for _, ch := range res.Changes {
				kind := map[container.ChangeType]string{container.ChangeAdd: "A", container.ChangeDelete: "D"}[ch.Kind]
				if kind == "" {
					kind = "C"
				}
				fmt.Fprintln(a.out, kind, ch.Path)
			}
			return nil
		},
	}
}

// exportCmd is `lodge export`: the container's filesystem as a tar.
func exportCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "export [OPTIONS] CONTAINER", Short: "Write a container's filesystem as a tar archive", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			rc, err := c.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return a.explain(err)
			}
			defer rc.Close()
			return writeOutput(output, a.out, rc)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file, not stdout")
	return cmd
}

// writeOutput copies rd to the file output (through a temp file, so a
// failure leaves no half archive), or to out.
func writeOutput(output string, out io.Writer, rd io.Reader) error {
	if output == "" {
		_, err := io.Copy(out, rd)
		return err
	}
	f, err := os.CreateTemp(dirOf(output), ".lodge-export-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // gone after the rename; left only by a failure reported below
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), output)
}

// commitCmd is `lodge commit`: an image of a container.
func commitCmd(a *app) *cobra.Command {
	var o client.ContainerCommitOptions
	var pause bool
	cmd := &cobra.Command{
		Use: "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", Short: "Make an image of a container's changes", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 2 {
				o.Reference = args[1]
			}
			res, err := c.ContainerCommit(cmd.Context(), args[0], o)
			if err != nil {
				return a.explain(err)
			}
			fmt.Fprintln(a.out, res.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.Comment, "message", "m", "", "commit message")
	cmd.Flags().StringVarP(&o.Author, "author", "a", "", "author")
	cmd.Flags().StringArrayVarP(&o.Changes, "change", "c", nil, "Dockerfile instruction to apply (CMD, ENV, ...)")
	cmd.Flags().BoolVarP(&pause, "pause", "p", true, "accepted for docker's sake: lodge does not pause")
	return cmd
}

// systemCmd is `lodge system df`.
func systemCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage lodge"}
	df := &cobra.Command{
		Use: "df", Short: "Show the disk space images, containers and volumes take", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
			if err != nil {
				return a.explain(err)
			}
			type row struct{ Type, Total, Active, Size, Reclaimable string }
			rows := []row{
				{"Images", fmt.Sprint(res.Images.TotalCount), fmt.Sprint(res.Images.ActiveCount), humanSize(res.Images.TotalSize), humanSize(res.Images.Reclaimable)},
				{"Containers", fmt.Sprint(res.Containers.TotalCount), fmt.Sprint(res.Containers.ActiveCount), humanSize(res.Containers.TotalSize), humanSize(res.Containers.Reclaimable)},
				{"Local Volumes", fmt.Sprint(res.Volumes.TotalCount), fmt.Sprint(res.Volumes.ActiveCount), humanSize(res.Volumes.TotalSize), humanSize(res.Volumes.Reclaimable)},
			}
			return printRows(a.out, "table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", rows)
		},
	}
	cmd.AddCommand(df)
	return cmd
}
