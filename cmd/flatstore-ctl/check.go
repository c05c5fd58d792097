package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	// time_zone as the plugin reads it, which carries the tz database.
	_ "time/tzdata"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/outputconf"
)

const checkHelp = `usage: flatstore-ctl check -config FILE [-output NAME] [-user USER]

Check every flatstore output of a Fluent Bit configuration (classic or YAML,
with its @INCLUDEs and variables, read as the engine reads them) as the
plugin's Init would, and more, without starting anything: every key's value,
the directory the files go in, an existing file that must be appended to,
and the control socket's directory — as the user Fluent Bit runs as (-user;
default: you). Prints every problem, one a line, and exits 1 when there is
one; 0 and a summary otherwise.

flags:
`

// runCheck implements flatstore-ctl check.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flatstore-ctl check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "Fluent Bit configuration (classic, or .yaml/.yml)")
	output := fs.String("output", "", "only this flatstore output: alias, instance name (flatstore.N) or path")
	as := fs.String("user", "", "check access as this user (name or uid), as Fluent Bit will run")
	usage := func(w io.Writer) {
		fmt.Fprint(w, checkHelp)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "flatstore-ctl: check: %v\n", err)
		usage(stderr)
		return 2
	}
	if *configFile == "" || len(pos) > 0 {
		fmt.Fprintln(stderr, "flatstore-ctl: check: -config FILE is required, and takes no other argument")
		return 2
	}
	access := flatstore.Access(flatstore.ProcessAccess)
	if *as != "" {
		u, err := lookupUser(*as)
		if err != nil {
			fmt.Fprintf(stderr, "flatstore-ctl: check: -user %q: %v\n", *as, err)
			return 2
		}
		access = u.access
	}
	outs, err := outputconf.Load(*configFile, "flatstore", nil)
	if err != nil {
		fmt.Fprintf(stderr, "flatstore-ctl: check: %s: %v\n", *configFile, err)
		return 1
	}
	if *output != "" {
		o, err := outputconf.Select(outs, *output)
		if err != nil {
			fmt.Fprintf(stderr, "flatstore-ctl: check: %s: %v\n", *configFile, err)
			return 1
		}
		outs = []outputconf.Output{*o}
	}
	if len(outs) == 0 {
		fmt.Fprintf(stderr, "flatstore-ctl: check: %s: no flatstore output in it\n", *configFile)
		return 1
	}
	problems := 0
	for _, o := range outs {
		say := func(msg string) {
			problems++
			fmt.Fprintf(stdout, "%s: %s\n", o.Describe(), msg)
		}
		for _, v := range o.Unset {
			say(fmt.Sprintf("${%s} is not set here: it reads as \"\"", v))
		}
		g := flatstore.MapGetter{}
		for _, p := range o.Props {
			if _, seen := g[p.Key]; !seen {
				g[p.Key] = p.Value
			}
		}
		// What Init checks, as Init checks it (as another user with -user).
		if _, err := flatstore.CheckConfig(g, access); err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				say(l)
			}
		}
	}
	if problems > 0 {
		fmt.Fprintf(stderr, "flatstore-ctl: check: %d problem(s) in %s\n", problems, *configFile)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d flatstore output(s): OK\n", *configFile, len(outs))
	return 0
}

// checkUser is another user's identity, for access checks by mode bits.
type checkUser struct {
	uid    uint32
	groups map[uint32]bool
}

func lookupUser(name string) (*checkUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	c := &checkUser{uid: uint32(uid), groups: map[uint32]bool{}}
	gids, _ := u.GroupIds()
	for _, g := range append(gids, u.Gid) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			c.groups[uint32(n)] = true
		}
	}
	return c, nil
}

// access decides by the file's owner, group and mode bits (root passes), as
// the kernel would for that user without ACLs or capabilities, after what
// refuses every user alike: a read-only mount, an immutable file (as this
// process finds them).
func (c *checkUser) access(path string, mode uint32) error {
	if err := flatstore.ProcessAccess(path, mode); errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	if c.uid == 0 {
		return nil
	}
	var shift uint32
	switch {
	case st.Uid == c.uid:
		shift = 6
	case c.groups[st.Gid]:
		shift = 3
	}
	if (st.Mode>>shift)&mode != mode {
		return unix.EACCES
	}
	return nil
}
