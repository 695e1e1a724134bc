package hooks

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"strings"
)

// PolicyEnv names the environment variable that holds the policy file's
// path.
const PolicyEnv = "GOSOCCR_POLICY"

// Policy says which external unix sockets the hooks handle and how. The
// zero Policy handles every socket with a named peer and refuses unread
// data.
type Policy struct {
	Handle        []string // peer name patterns to handle; none: all
	Exclude       []string // peer name patterns never to handle
	Renames       []Rename // peer paths to connect to elsewhere on restore
	AllowDataLoss bool     // dump sockets with unread data, dropping it
}

// Rename maps a peer's name at dump to the name to connect to on restore.
type Rename struct{ From, To string }

// LoadPolicy reads the policy named by GOSOCCR_POLICY, or returns the zero
// Policy when the variable is unset or empty.
func LoadPolicy() (*Policy, error) { return LoadPolicyFile(os.Getenv(PolicyEnv)) }

// LoadPolicyFile reads the policy file p, or returns the zero Policy when p
// is empty.
func LoadPolicyFile(p string) (*Policy, error) {
	if p == "" {
		return &Policy{}, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("policy %s=%s: %w", PolicyEnv, p, err)
	}
	pol, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p, err)
	}
	return pol, nil
}

// ParsePolicy parses the text of a policy file (see the package
// documentation).
func ParsePolicy(b []byte) (*Policy, error) {
	pol := &Policy{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(want string) error { return fmt.Errorf("line %d: %q: want %s", n, strings.TrimSpace(line), want) }
		switch f[0] {
		case "handle", "exclude":
			if len(f) != 2 {
				return nil, bad(f[0] + " PATTERN")
			}
			if _, err := path.Match(f[1], ""); err != nil {
				return nil, fmt.Errorf("line %d: pattern %q: %w", n, f[1], err)
			}
			if f[0] == "handle" {
				pol.Handle = append(pol.Handle, f[1])
			} else {
				pol.Exclude = append(pol.Exclude, f[1])
			}
		case "rename":
			if len(f) != 3 {
				return nil, bad("rename FROM TO")
			}
			pol.Renames = append(pol.Renames, Rename{f[1], f[2]})
		case "allow-data-loss":
			if len(f) != 1 {
				return nil, bad("allow-data-loss alone")
			}
			pol.AllowDataLoss = true
		default:
			return nil, fmt.Errorf("line %d: unknown directive %q", n, f[0])
		}
	}
	return pol, sc.Err()
}

// Handles reports whether the policy takes a socket whose peer has the
// given name (an abstract name starts with @).
func (p *Policy) Handles(peer string) bool {
	match := func(pats []string) bool {
		for _, pat := range pats {
			if ok, _ := path.Match(pat, peer); ok {
				return true
			}
		}
		return false
	}
	if match(p.Exclude) {
		return false
	}
	return len(p.Handle) == 0 || match(p.Handle)
}

// Renamed returns the name to connect to on restore for a peer that was
// called name at dump.
func (p *Policy) Renamed(name string) string {
	for _, r := range p.Renames {
		if r.From == name {
			return r.To
		}
	}
	return name
}
