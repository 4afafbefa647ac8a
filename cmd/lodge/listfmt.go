package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/templates"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// The list commands print through the docker CLI's own formatter, so
// headers, column widths, --format (table, json, raw, Go templates with
// docker's functions), --no-trunc and --quiet come out as docker's do.

// listFormat is the format a list command uses: --format, else the one
// the user set for docker in ~/.docker/config.json (psFormat, ...), else
// docker's table. quiet keeps the configured one out, as docker does.
func listFormat(flag string, quiet bool, fromConfig func(psFormat, imagesFormat, volumesFormat, networksFormat string) string) string {
	if flag != "" {
		if quiet {
			fmt.Fprintln(os.Stderr, "WARNING: Ignoring custom format, because both --format and --quiet are set.")
		}
		return flag
	}
	if quiet {
		return formatter.TableFormatKey
	}
	if cf, err := config.Load(config.Dir()); err == nil && cf != nil {
		if f := fromConfig(cf.PsFormat, cf.ImagesFormat, cf.VolumesFormat, cf.NetworksFormat); f != "" {
			return f
		}
	}
	return formatter.TableFormatKey
}

// psNeedsSize tells whether a ps --format template shows .Size: a
// container's size is costly to compute, so it is asked for only then.
func psNeedsSize(format string) (bool, error) {
	tmpl, err := templates.Parse(format)
	if err != nil {
		return false, fmt.Errorf("failed to parse template: %w", err)
	}
	ctx := formatter.NewContainerContext() // it records the fields read
	if err := tmpl.Execute(io.Discard, ctx); err != nil {
		return false, fmt.Errorf("failed to execute template: %w", err)
	}
	_, ok := ctx.FieldsUsed["Size"]
	return ok, nil
}

func writeContainers(w io.Writer, items []container.Summary, format string, quiet, size, noTrunc bool) error {
	return formatter.ContainerWrite(formatter.Context{
		Output: w,
		Format: formatter.NewContainerFormat(format, quiet, size),
		Trunc:  !noTrunc,
	}, items)
}

func writeImages(w io.Writer, items []image.Summary, format string, quiet, digests, noTrunc bool) error {
	return formatter.ImageWrite(formatter.ImageContext{
		Context: formatter.Context{Output: w, Format: formatter.NewImageFormat(format, quiet, digests), Trunc: !noTrunc},
		Digest:  digests,
	}, items)
}

// writeVolumes prints volumes sorted by name, naturally (vol2 before
// vol10), as docker volume ls does.
func writeVolumes(w io.Writer, items []volume.Volume, format string, quiet bool) error {
	vols := slices.Clone(items)
	slices.SortFunc(vols, func(a, b volume.Volume) int { return naturalCompare(a.Name, b.Name) })
	return formatter.VolumeWrite(formatter.Context{Output: w, Format: formatter.NewVolumeFormat(format, quiet)}, vols)
}

// writeNetworks prints networks sorted by name, naturally, with docker
// network ls's columns and fields.
func writeNetworks(w io.Writer, items []network.Summary, format string, quiet, noTrunc bool) error {
	var f formatter.Format
	switch {
	case format == formatter.TableFormatKey && quiet:
		f = formatter.DefaultQuietFormat
	case format == formatter.TableFormatKey:
		f = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
	case format == formatter.RawFormatKey && quiet:
		f = "network_id: {{.ID}}"
	case format == formatter.RawFormatKey:
		f = "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n"
	default:
		f = formatter.Format(format)
	}
	nets := slices.Clone(items)
	slices.SortFunc(nets, func(a, b network.Summary) int { return naturalCompare(a.Name, b.Name) })
	ctx := formatter.Context{Output: w, Format: f, Trunc: !noTrunc}
	header := &networkRow{HeaderContext: formatter.HeaderContext{Header: formatter.SubHeaderContext{
		"ID": "NETWORK ID", "Name": formatter.NameHeader, "Driver": formatter.DriverHeader, "Scope": formatter.ScopeHeader,
		"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": formatter.LabelsHeader, "CreatedAt": formatter.CreatedAtHeader,
	}}}
	return ctx.Write(header, func(write func(formatter.SubContext) error) error {
		for _, n := range nets {
			if err := write(&networkRow{n: n, trunc: ctx.Trunc}); err != nil {
				return err
			}
		}
		return nil
	})
}

// networkRow is what a network ls template sees: docker's field names.
type networkRow struct {
	formatter.HeaderContext
	n     network.Summary
	trunc bool
}

func (r *networkRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }

func (r *networkRow) ID() string {
	if r.trunc {
		return formatter.TruncateID(r.n.ID)
	}
	return r.n.ID
}
func (r *networkRow) Name() string      { return r.n.Name }
func (r *networkRow) Driver() string    { return r.n.Driver }
func (r *networkRow) Scope() string     { return r.n.Scope }
func (r *networkRow) IPv4() string      { return strconv.FormatBool(r.n.EnableIPv4) }
func (r *networkRow) IPv6() string      { return strconv.FormatBool(r.n.EnableIPv6) }
func (r *networkRow) Internal() string  { return strconv.FormatBool(r.n.Internal) }
func (r *networkRow) CreatedAt() string { return r.n.Created.String() }
func (r *networkRow) Label(name string) string {
	return r.n.Labels[name]
}
func (r *networkRow) Labels() string {
	kv := make([]string, 0, len(r.n.Labels))
	for k, v := range r.n.Labels {
		kv = append(kv, k+"="+v)
	}
	return strings.Join(kv, ",")
}

// naturalCompare orders strings with runs of digits compared as numbers:
// "vol2" < "vol10".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		ra, rb := rune(a[0]), rune(b[0])
		if unicode.IsDigit(ra) && unicode.IsDigit(rb) {
			da, db := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if da != db { // more leading zeros first
				return db - da
			}
			a, b = a[da:], b[db:]
			continue
		}
		if ra != rb {
			return int(ra) - int(rb)
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}
