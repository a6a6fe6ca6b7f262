package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Values of Target.StrictHostKeys, named after ssh_config's
// StrictHostKeyChecking.
const (
	StrictYes = "yes"        // refuse a host key known_hosts does not hold
	AcceptNew = "accept-new" // record it in the user's known_hosts and connect
)

// ParseStrictHostKeys reads a StrictHostKeyChecking value the way herd
// honours it. "ask" is "yes" because herd never asks. "no" and "off" are
// "accept-new": ssh would also connect to a host whose key changed, herd
// never does (turning checks off is check_host_keys=False on a role).
func ParseStrictHostKeys(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "ask":
		return StrictYes, nil
	case "accept-new", "no", "off":
		return AcceptNew, nil
	}
	return "", fmt.Errorf("%q: want yes or accept-new (no/off act as accept-new)", v)
}

// anyAddr stands for the remote address in known_hosts look-ups: the
// callbacks need one, but match only the host:port they are given.
var anyAddr = &net.TCPAddr{IP: net.IPv4zero}

// lockWait bounds how long a connection waits for another herd (or ssh-keygen
// -H, which does not lock) to finish writing known_hosts.
const lockWait = 10 * time.Second

// recordHostKey appends key for addr (host:port) to file in OpenSSH's format
// ("host key", "[host]:port key" off port 22, hashed when hash is set),
// creating the file 0600 and missing directories 0700. Parallel connections
// take an exclusive flock and re-read the file under it, so each host is
// written once and a key another connection recorded meanwhile is honoured:
// if it differs from key, the result is ErrHostKeyChanged, never a second
// entry. The line goes out in one O_APPEND write, so readers that do not
// lock (ssh) never see half of it.
func recordHostKey(file, addr string, key ssh.PublicKey, hash bool) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f, lockWait); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	// Another connection may have recorded this host while we waited.
	if db, err := knownhosts.New(file); err == nil {
		err = db(addr, anyAddr, key)
		var keyErr *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
			return fmt.Errorf("%w: %s:%d now has %s for it", ErrHostKeyChanged,
				keyErr.Want[0].Filename, keyErr.Want[0].Line, keyName(keyErr.Want[0].Key))
		}
	}

	host := knownhosts.Normalize(addr)
	if hash {
		host = knownhosts.HashHostname(host)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	if needsNewline(f) {
		line = "\n" + line
	}
	if _, err := f.Write([]byte(line)); err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil // UserKnownHostsFile /dev/null: nothing to sync
	}
	return f.Sync()
}

// lockFile takes an exclusive flock on f, giving up after wait.
func lockFile(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still locked by another process after %s", wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needsNewline reports whether f is a regular file whose last byte is not a
// newline, so an appended line would be glued to the previous one.
func needsNewline(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return false
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], st.Size()-1); err != nil && err != io.EOF {
		return false
	}
	return b[0] != '\n'
}
