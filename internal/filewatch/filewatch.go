// Package filewatch tells herd watch when an input of the plans changed on
// the controller: every file under the policy's directory, and every path
// the policy read wherever it lives (policy.Inputs), with fsnotify. It is
// controller code.
package filewatch

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce gathers the file events of one save (editors write, rename
// and chmod) into one re-plan.
var Debounce = 200 * time.Millisecond

// Watch reports changes of the inputs: one name per (debounced) change on
// Changes. Inputs are files or directories (everything under them), and
// may not exist yet (a group_vars/ made later).
type Watch struct {
	fw  *fsnotify.Watcher
	out chan string

	mu    sync.Mutex      // the loop and watch() (called while planning)
	roots map[string]bool // directories watched with all their subdirectories
	files map[string]bool // single paths: files, and inputs that do not exist yet
	// chain are missing directories on the way to a missing input: when
	// one is made, it is watched in turn.
	chain map[string]bool
}

// New watches dir with all its subdirectories, and paths.
func New(dir string, paths []string) (*Watch, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watch{fw: fw, out: make(chan string, 1),
		roots: map[string]bool{}, files: map[string]bool{}, chain: map[string]bool{}}
	abs, _ := filepath.Abs(dir)
	w.roots[abs] = true
	w.addTree(abs)
	w.Add(paths...)
	go w.loop()
	return w, nil
}

// Add adds paths (files or directories, existing or not) to the watch; it
// is safe while the watch runs, and cheap for paths already watched.
func (w *Watch) Add(paths ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range paths {
		w.add(p)
	}
}

// Changes delivers the base name of a changed input, once per save; a
// change while one is pending is folded into it. Closed when the watch is.
func (w *Watch) Changes() <-chan string { return w.out }

func (w *Watch) add(p string) {
	p, err := filepath.Abs(p)
	if err != nil || w.covered(p) {
		return // the roots' watch sees it
	}
	fi, err := os.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		delete(w.files, p)
		w.roots[p] = true
		w.addTree(p)
	case err == nil:
		w.files[p] = true
		w.fw.Add(filepath.Dir(p))
	default: // missing: watch the nearest directory that exists
		w.files[p] = true
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			if w.fw.Add(d) == nil || d == filepath.Dir(d) {
				break
			}
			w.chain[d] = true
		}
	}
}

// covered: p is under a root and behind no name the roots' watch ignores
// (a dot file or directory, an editor's), so the roots' watch sees it.
// An input elsewhere, or in a hidden directory, is watched on its own.
func (w *Watch) covered(p string) bool {
	for r := range w.roots {
		rel, err := filepath.Rel(r, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		hidden := false
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			hidden = hidden || (part != "." && ignored(part))
		}
		if !hidden {
			return true
		}
	}
	return false
}

// addTree watches dir and its subdirectories, hidden ones (.git) excepted.
func (w *Watch) addTree(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		w.fw.Add(p)
		return nil
	})
}

// ignored are editor droppings that are not the policy's files.
func ignored(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") ||
		strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") || base == "4913"
}

// relevant reports whether an event on name is a change of an input, and
// watches directories that appear where inputs are awaited.
func (w *Watch) relevant(ev fsnotify.Event) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	name := ev.Name
	input := w.files[name]
	rooted := w.covered(name)
	if !input && !w.chain[name] && !rooted {
		return false
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Stat(name); err == nil && fi.IsDir() {
			switch {
			case w.chain[name]:
				delete(w.chain, name)
				for p := range w.files { // the next step may be there already
					if strings.HasPrefix(p, name+string(filepath.Separator)) {
						w.add(p)
					}
				}
			case input:
				w.add(name) // a directory input, made now
			default:
				w.addTree(name)
			}
		}
	}
	return input || !ignored(name)
}

func (w *Watch) loop() {
	var timer <-chan time.Time
	what := ""
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				close(w.out)
				return
			}
			if !w.relevant(ev) {
				continue
			}
			what = filepath.Base(ev.Name)
			timer = time.After(Debounce)
		case <-timer:
			timer = nil
			select {
			case w.out <- what:
			default: // a re-plan is pending already; it reads the files anew
			}
		case _, ok := <-w.fw.Errors:
			if !ok {
				close(w.out)
				return
			}
		}
	}
}

func (w *Watch) Close() { w.fw.Close() }
