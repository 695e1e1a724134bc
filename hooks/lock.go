package hooks

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/gosoccr/gosoccr/soccr"
	"golang.org/x/sys/unix"
)

// The network lock keeps the packets of chosen TCP connections away from
// the host while they are between checkpoint and restore: a packet that
// reached a closed port would be answered with a reset, and one that
// reached a paused socket would change it. It is built on nftables, over
// netlink, in a table of its own:
//
//	table inet gosoccr {
//		set v4 { type ipv4_addr . inet_service . ipv4_addr . inet_service }
//		set v6 { type ipv6_addr . inet_service . ipv6_addr . inet_service }
//		chain output { type filter hook output priority raw; policy accept;
//			meta nfproto ipv4 meta l4proto tcp meta mark != 0xc114 ip saddr . tcp sport . ip daddr . tcp dport @v4 drop
//			meta nfproto ipv6 meta l4proto tcp meta mark != 0xc114 ip6 saddr . tcp sport . ip6 daddr . tcp dport @v6 drop
//		}
//		chain input { type filter hook input priority raw; policy accept;
//			... ip daddr . tcp dport . ip saddr . tcp sport @v4 drop (and v6)
//		}
//	}
//
// One element per connection, local address and port first, serves both
// directions. Packets marked soccr.Mark (the FINs that soccr injects at
// restore) pass. The chains run at raw priority, before conntrack, so a
// dropped packet leaves no conntrack state behind.

// LockTable is the name of the nftables table (family inet) of the network
// lock.
const LockTable = "gosoccr"

// Tuple names one TCP connection for the network lock: our address and
// port, and the peer's. An IPv4-mapped IPv6 address (a v4 peer of an
// AF_INET6 socket) is the IPv4 address it maps: such a connection carries
// IPv4 packets.
type Tuple struct {
	Local, Remote netip.AddrPort
}

// TupleOf returns the 4-tuple of a saved connection.
func TupleOf(st *soccr.State) Tuple { return Tuple{Local: st.Local, Remote: st.Remote} }

// SocketTuple returns the 4-tuple of the connected socket fd (getsockname
// and getpeername).
func SocketTuple(fd int) (Tuple, error) {
	l, err := unix.Getsockname(fd)
	if err != nil {
		return Tuple{}, fmt.Errorf("fd %d: getsockname: %w", fd, err)
	}
	r, err := unix.Getpeername(fd)
	if err != nil {
		return Tuple{}, fmt.Errorf("fd %d: getpeername: %w", fd, err)
	}
	return Tuple{Local: addrPortOf(l), Remote: addrPortOf(r)}, nil
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func (t Tuple) String() string { return t.Local.String() + "-" + t.Remote.String() }

// key returns the set element of t: local address, local port, remote
// address, remote port, each field padded to 4 bytes as nftables keeps
// concatenations in 32-bit registers. v6 tells which set it belongs to.
func (t Tuple) key() (k []byte, v6 bool, err error) {
	l, r := t.Local.Addr().Unmap(), t.Remote.Addr().Unmap()
	if !l.IsValid() || !r.IsValid() || l.Is4() != r.Is4() {
		return nil, false, fmt.Errorf("network lock: connection %s: %w", t, unix.EINVAL)
	}
	if l.Is4() {
		k = make([]byte, 0, 16)
	} else {
		k = make([]byte, 0, 40)
	}
	k = append(k, l.AsSlice()...)
	k = append(k, byte(t.Local.Port()>>8), byte(t.Local.Port()), 0, 0)
	k = append(k, r.AsSlice()...)
	k = append(k, byte(t.Remote.Port()>>8), byte(t.Remote.Port()), 0, 0)
	return k, !l.Is4(), nil
}

// tupleOfKey is the inverse of key.
func tupleOfKey(k []byte) (Tuple, bool) {
	var n int
	switch len(k) {
	case 16:
		n = 4
	case 40:
		n = 16
	default:
		return Tuple{}, false
	}
	field := func(b []byte) netip.AddrPort {
		a, _ := netip.AddrFromSlice(b[:n])
		return netip.AddrPortFrom(a, uint16(b[n])<<8|uint16(b[n+1]))
	}
	return Tuple{Local: field(k), Remote: field(k[n+4:])}, true
}

var (
	lockTable = &nftables.Table{Name: LockTable, Family: nftables.TableFamilyINet}
	// Explicit IDs keep the library from numbering the sets itself (a
	// counter shared by every Conn); rules name the sets by name and ID.
	lockSetV4 = &nftables.Set{Table: lockTable, Name: "v4", ID: 0x6f5c0004, Concatenation: true,
		KeyType:      nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService, nftables.TypeIPAddr, nftables.TypeInetService),
		KeyByteOrder: binaryutil.BigEndian}
	lockSetV6 = &nftables.Set{Table: lockTable, Name: "v6", ID: 0x6f5c0006, Concatenation: true,
		KeyType:      nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetService, nftables.TypeIP6Addr, nftables.TypeInetService),
		KeyByteOrder: binaryutil.BigEndian}
)

// Batch limits. The elements of one netlink message sit in one attribute,
// whose length is 16 bits: at most setElemsPerMsg per message (52 bytes
// each for IPv6). One transaction is one sendmsg(2), bounded by the
// socket's send buffer (208 KiB by default): at most txBytes of elements.
const (
	setElemsPerMsg = 1000
	txBytes        = 160 << 10
)

// Lock adds the connections to the network lock: from its return until
// Unlock, no packet of theirs, in either direction, reaches or leaves the
// host, except packets marked soccr.Mark. The first call creates the table
// (and repairs it if someone changed it); locking a locked connection is
// harmless. Up to a few thousand connections go in one netlink
// transaction, all or none (2,800 IPv4 or 1,500 IPv6 ones fit at least);
// more are split into transactions in order, and an error then leaves the
// earlier ones locked: Unlock them, or RemoveLock.
//
// The lock applies in the network namespace of the calling thread: call it
// on a thread locked to the namespace of the connections
// (runtime.LockOSThread). It needs CAP_NET_ADMIN there. Each call opens
// and closes a netlink socket; a Locker keeps one for many calls.
func Lock(conns ...Tuple) error {
	return oneShot(func(l *Locker) error { return l.Lock(conns...) })
}

// Unlock removes the connections from the network lock: their packets flow
// again. Unlocking a connection that is not locked is harmless. The table
// itself stays, empty, until RemoveLock; without a table, Unlock does
// nothing. Batches as Lock, same namespace rule.
//
// Most of its time is the close of its netlink socket: after a transaction
// that removed something, nf_tables makes the close of a netlink socket
// wait for the removal's RCU grace period (about 10 ms on these machines,
// whatever the count). A Locker pays it once, at Close.
func Unlock(conns ...Tuple) error {
	return oneShot(func(l *Locker) error { return l.Unlock(conns...) })
}

func oneShot(fn func(l *Locker) error) error {
	l, err := newLocker(false)
	if err != nil {
		return err
	}
	err = fn(l)
	l.Close()
	return err
}

// A Locker locks and unlocks connections over one netlink socket, which it
// keeps until Close: for a process that locks and unlocks connections a
// few at a time (a dump, then a restore, of each), where the package's
// Lock and Unlock would each open and close a socket. It acts on the
// network namespace of the thread that called NewLocker, whatever thread
// calls its methods. Its methods are safe for concurrent use.
//
// Lock checks that the lock's chains are still as it made them before it
// adds connections (someone may have flushed them), which costs reading
// them back; a Locker reads them only when the ruleset changed since its
// own last transaction, as nf_tables' generation counter tells.
type Locker struct {
	mu sync.Mutex
	c  *nftables.Conn
	// gen asks for the ruleset generation; nil for a one-shot Lock. known
	// says that the chains were ours, as made, at generation verified.
	gen      *genConn
	known    bool
	verified uint32
	// chainReads counts the readings of the chains, for the tests.
	chainReads int
}

// NewLocker opens a Locker's netlink socket in the calling thread's network
// namespace. The caller closes it.
func NewLocker() (*Locker, error) { return newLocker(true) }

func newLocker(withGen bool) (*Locker, error) {
	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("network lock: netlink socket: %w", err)
	}
	l := &Locker{c: c}
	if withGen {
		// Without it the Locker still works, reading the chains at
		// every Lock.
		l.gen, _ = newGenConn()
	}
	return l, nil
}

// Close closes the Locker's netlink socket. See Unlock for its cost.
func (l *Locker) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != nil {
		l.gen.close()
		l.gen = nil
	}
	return l.c.CloseLasting()
}

// Lock is the package's Lock over l's socket.
func (l *Locker) Lock(conns ...Tuple) error { return l.op(true, conns) }

// Unlock is the package's Unlock over l's socket.
func (l *Locker) Unlock(conns ...Tuple) error { return l.op(false, conns) }

func (l *Locker) op(lock bool, conns []Tuple) error {
	var v4, v6 []nftables.SetElement
	seen := make(map[string]bool, len(conns))
	for _, t := range conns {
		k, is6, err := t.key()
		if err != nil {
			return err
		}
		// A connection named twice would be deleted twice by Unlock,
		// and the second delete fail the transaction.
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		if is6 {
			v6 = append(v6, nftables.SetElement{Key: k})
		} else {
			v4 = append(v4, nftables.SetElement{Key: k})
		}
	}
	if !lock && len(conns) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	op, per := "lock", 1
	if !lock {
		op, per = "unlock", 2 // unlock adds, then deletes: see tx
	}
	// The generation before: if it is the one at which the chains were
	// last seen as made, nobody touched the ruleset since.
	g0, gok := l.generation()
	valid := gok && l.known && g0 == l.verified
	l.known = false
	chains := false
	if lock && !valid {
		// The chains are rebuilt only when they are not ours as we
		// made them: a rebuild deletes rules, and that costs the close
		// of a netlink socket a grace period (see Unlock).
		l.chainReads++
		ok, err := l.chainsInPlace()
		if err != nil {
			return fmt.Errorf("network lock: %s: read the chains: %w", op, err)
		}
		chains, valid = !ok, gok
	}
	var ntx uint32
	for first := true; first || len(v4)+len(v6) > 0; first = false {
		// One transaction: as many elements as fit, IPv4 first.
		budget := txBytes/per - 2*32 // and the generation's marker, see tx
		n4 := min(len(v4), budget/32)
		n6 := min(len(v6), (budget-n4*32)/56)
		if err := l.tx(lock, chains, v4[:n4], v6[:n6]); err != nil {
			return fmt.Errorf("network lock: %s %d connections: %w", op, n4+n6, err)
		}
		v4, v6, chains = v4[n4:], v6[n6:], false
		ntx++
	}
	// The generation after: each of our transactions moved it by one, so
	// if it moved by exactly that much, nobody else changed the ruleset
	// in between, and the chains are still as they were at g0.
	if g1, ok := l.generation(); valid && ok && g1 == g0+ntx {
		l.known, l.verified = true, g1
	}
	return nil
}

// generation reads the ruleset's generation, if the Locker can.
func (l *Locker) generation() (uint32, bool) {
	if l.gen == nil {
		return 0, false
	}
	g, err := l.gen.generation()
	return g, err == nil
}

// chainsInPlace tells whether the lock's table has just its two chains,
// with our hook, priority and policy, holding our two rules each, in
// order, and nothing else. Our rules carry their name in their user data;
// their expressions are not compared.
func (l *Locker) chainsInPlace() (bool, error) {
	chains, err := l.c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, err
	}
	found := 0
	for _, ch := range chains {
		if ch.Table.Name != LockTable {
			continue
		}
		out := ch.Name == "output"
		if !out && ch.Name != "input" {
			return false, nil
		}
		hook := nftables.ChainHookInput
		if out {
			hook = nftables.ChainHookOutput
		}
		if ch.Hooknum == nil || *ch.Hooknum != *hook || ch.Priority == nil || *ch.Priority != *nftables.ChainPriorityRaw ||
			ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept || ch.Type != nftables.ChainTypeFilter {
			return false, nil
		}
		rules, err := l.c.GetRules(lockTable, ch)
		if err != nil {
			return false, err
		}
		if len(rules) != 2 || string(rules[0].UserData) != ruleTag(lockSetV4, out) || string(rules[1].UserData) != ruleTag(lockSetV6, out) {
			return false, nil
		}
		found++
	}
	return found == 2, nil
}

// tx sends one transaction. With chains (the table is missing, or not as
// we made it), it first makes sure the table and its sets exist (add
// without NLM_F_EXCL is idempotent) and replaces the chains' rules (flush
// then add, atomically: a packet never sees the chain empty); otherwise
// the table is known to be there and the transaction holds only the
// elements. Lock adds the elements (again idempotent). Unlock adds each
// element and deletes it: deleting a missing element would fail the whole
// transaction with ENOENT, adding it first makes the delete always find
// it, so an unlocked connection is harmless without a round trip to ask.
func (l *Locker) tx(lock, chains bool, v4, v6 []nftables.SetElement) error {
	c := l.c
	if chains {
		c.AddTable(lockTable)
		for _, s := range []*nftables.Set{lockSetV4, lockSetV6} {
			if err := c.AddSet(s, nil); err != nil {
				return err
			}
		}
		addLockChains(c)
	}
	for _, e := range []struct {
		s     *nftables.Set
		elems []nftables.SetElement
	}{{lockSetV4, v4}, {lockSetV6, v6}} {
		for elems := e.elems; len(elems) > 0; {
			n := min(len(elems), setElemsPerMsg)
			if err := c.SetAddElements(e.s, elems[:n]); err != nil {
				return err
			}
			if !lock {
				if err := c.SetDeleteElements(e.s, elems[:n]); err != nil {
					return err
				}
			}
			elems = elems[n:]
		}
	}
	if l.gen != nil {
		// A marker added and deleted: a transaction changes nothing
		// when it only adds elements that are there already, and
		// nf_tables then leaves its generation where it is; with the
		// marker every transaction of ours moves it by one, which op
		// counts on. No connection has ports 0.
		if err := c.SetAddElements(lockSetV4, genMarker); err != nil {
			return err
		}
		if err := c.SetDeleteElements(lockSetV4, genMarker); err != nil {
			return err
		}
	}
	err := c.Flush()
	if !lock && errors.Is(err, unix.ENOENT) {
		// No table, or no set: nothing is locked.
		return nil
	}
	return err
}

// genMarker is the element of tx's marker: 0.0.0.0 port 0 both ways.
var genMarker = []nftables.SetElement{{Key: make([]byte, 16)}}

func addLockChains(c *nftables.Conn) {
	accept := nftables.ChainPolicyAccept
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
		out  bool
	}{{"output", nftables.ChainHookOutput, true}, {"input", nftables.ChainHookInput, false}} {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: lockTable, Type: nftables.ChainTypeFilter,
			Hooknum: h.hook, Priority: nftables.ChainPriorityRaw, Policy: &accept})
		c.FlushChain(ch)
		for _, s := range []*nftables.Set{lockSetV4, lockSetV6} {
			c.AddRule(&nftables.Rule{Table: lockTable, Chain: ch, Exprs: lockRule(s, h.out), UserData: []byte(ruleTag(s, h.out))})
		}
	}
}

// ruleTag is the user data of our rule of set s in the output or input
// chain: how chainsInPlace recognizes it.
func ruleTag(s *nftables.Set, out bool) string {
	if out {
		return "gosoccr lock " + s.Name + " output"
	}
	return "gosoccr lock " + s.Name + " input"
}

// lockRule drops TCP packets of the set's family whose 4-tuple, ours
// first, is in set s, unless marked soccr.Mark. On output ours is the
// source, on input the destination. The key is loaded into consecutive
// 32-bit registers from NFT_REG32_00 (register 1 is its 16-byte alias),
// each field taking whole registers.
func lockRule(s *nftables.Set, out bool) []expr.Any {
	proto, addrLen, saddr, daddr := byte(unix.NFPROTO_IPV4), uint32(4), uint32(12), uint32(16)
	if s == lockSetV6 {
		proto, addrLen, saddr, daddr = unix.NFPROTO_IPV6, 16, 8, 24
	}
	ourAddr, ourPort, theirAddr, theirPort := saddr, uint32(0), daddr, uint32(2)
	if !out {
		ourAddr, ourPort, theirAddr, theirPort = daddr, 2, saddr, 0
	}
	const reg32 = 8 // NFT_REG32_00
	regs := addrLen / 4
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(soccr.Mark)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: ourAddr, Len: addrLen},
		&expr.Payload{DestRegister: reg32 + regs, Base: expr.PayloadBaseTransportHeader, Offset: ourPort, Len: 2},
		&expr.Payload{DestRegister: reg32 + regs + 1, Base: expr.PayloadBaseNetworkHeader, Offset: theirAddr, Len: addrLen},
		&expr.Payload{DestRegister: reg32 + 2*regs + 1, Base: expr.PayloadBaseTransportHeader, Offset: theirPort, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// Locked returns the connections the network lock of the calling thread's
// network namespace holds: none when there is no lock table. With
// RemoveLock, it is how a tool finds and clears a lock that a crashed
// process left behind.
func Locked() ([]Tuple, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("network lock: list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == LockTable }) {
		return nil, nil
	}
	var ts []Tuple
	for _, s := range []*nftables.Set{lockSetV4, lockSetV6} {
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("network lock: list set %s: %w", s.Name, err)
		}
		for _, e := range elems {
			if t, ok := tupleOfKey(e.Key); ok {
				ts = append(ts, t)
			}
		}
	}
	return ts, nil
}

// RemoveLock deletes the network lock's table from the calling thread's
// network namespace: every connection locked there, by this process or
// any other, flows again, and nothing of the lock is left. It is the one
// call that clears a lock left behind by a process that crashed between
// checkpoint and restore (see Locked to list what it held). Without a
// table it does nothing.
func RemoveLock() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network lock: %w", err)
	}
	c.DelTable(lockTable)
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("network lock: remove table %s: %w", LockTable, err)
	}
	return nil
}
