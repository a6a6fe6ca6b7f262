package main

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce gathers the file events of one save (editors write, rename
// and chmod) into one re-plan.
var watchDebounce = 200 * time.Millisecond

// fileWatch tells herd watch when a file the policy reads changed: every
// file under the policy's directory (policy, load()ed .star files,
// templates, served files), and the inventory files, wherever they are.
type fileWatch struct {
	fw    *fsnotify.Watcher
	roots []string        // directories watched with all their subdirectories
	files map[string]bool // single files outside the roots
	out   chan string
}

func newFileWatch(dir string, files []string) (*fileWatch, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &fileWatch{fw: fw, files: map[string]bool{}, out: make(chan string, 1)}
	abs, _ := filepath.Abs(dir)
	w.roots = []string{abs}
	w.addTree(abs)
	w.setFiles(files)
	go w.loop()
	return w, nil
}

// setFiles watches files outside the roots (through their directories).
func (w *fileWatch) setFiles(files []string) {
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil || w.inRoots(abs) || w.files[abs] {
			continue
		}
		w.files[abs] = true
		w.fw.Add(filepath.Dir(abs))
	}
}

func (w *fileWatch) inRoots(p string) bool {
	for _, r := range w.roots {
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// addTree watches dir and its subdirectories, hidden ones (.git) excepted.
func (w *fileWatch) addTree(dir string) {
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

func (w *fileWatch) loop() {
	var timer <-chan time.Time
	what := ""
	for {
		select {
		case ev, ok := <-w.fw.Events:
			if !ok {
				close(w.out)
				return
			}
			if !w.inRoots(ev.Name) && !w.files[ev.Name] {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					w.addTree(ev.Name)
				}
			}
			if ignored(ev.Name) {
				continue
			}
			what = filepath.Base(ev.Name)
			timer = time.After(watchDebounce)
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

func (w *fileWatch) Close() { w.fw.Close() }
