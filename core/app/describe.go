package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"github.com/estela-go/estela-go/core/internal/pluginhost"
)

// ListPlugins starts every plugin found in dirs just long enough to ask for its info, and
// prints a table of them.
func ListPlugins(ctx context.Context, dirs []string, log hclog.Logger, out io.Writer) error {
	bins, err := pluginhost.Discover(dirs)
	if err != nil {
		return err
	}
	if len(bins) == 0 {
		return fmt.Errorf("no plugins found in %s; run `make build`", strings.Join(dirs, ", "))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tAPI VERSIONS\tCAPABILITIES\tPATH")
	for _, b := range bins {
		info, err := pluginhost.Describe(ctx, b, log)
		if err != nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\terror: %v\t%s\n", b.Kind, b.Name, err, b.Path)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", b.Kind, b.Name, info.Version, info.APIVersions, strings.Join(info.Capabilities, ","), b.Path)
	}
	return tw.Flush()
}
