package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/cuttledeploy/cuttle"
)

// envNames holds the environment variables not named after their flag.
var envNames = map[string]string{
	"home": "CUTTLE_AGENT_HOME", // the agent's home, apart from the server's data folder
}

// envName is the environment variable of a flag: --node-name is CUTTLE_NODE_NAME.
func envName(flagName string) string {
	if name, ok := envNames[flagName]; ok {
		return name
	}
	return "CUTTLE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a flag set whose usage lists every flag with its default
// and environment variable.
func newFlagSet(name, synopsis string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s\n\nFlags (each also read from its environment variable):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(out, "  --%s  [$%s]%s\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
		})
	}
	return fs
}

// parseFlags parses args; a flag not given on the command line takes the
// value of its environment variable, if that is set.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !given[f.Name] && err == nil {
			if setErr := f.Value.Set(v); setErr != nil {
				err = fmt.Errorf("invalid value %q for $%s: %v", v, envName(f.Name), setErr)
			}
		}
	})
	return err
}

// optionalInt is an int flag that remembers whether it was set.
type optionalInt struct {
	set bool
	v   int
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return fmt.Sprint(o.v)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a whole number")
	}
	o.v, o.set = v, true
	return nil
}

func (o *optionalInt) ptr() *int {
	if !o.set {
		return nil
	}
	v := o.v
	return &v
}

// sizeFlag is a flag of a size in bytes, written as cuttle.ParseSize reads
// it: 16KiB, 256MiB, 4GiB or a plain number of bytes.
type sizeFlag[T int | int64] struct{ v *T }

func (f sizeFlag[T]) String() string {
	if f.v == nil {
		return ""
	}
	return cuttle.FormatSize(int64(*f.v))
}

func (f sizeFlag[T]) Set(s string) error {
	n, err := cuttle.ParseSize(s)
	if err != nil {
		return err
	}
	if int64(T(n)) != n {
		return fmt.Errorf("%q is too large", s)
	}
	*f.v = T(n)
	return nil
}
