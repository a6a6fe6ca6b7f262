package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/term"
)

// passwordPrompt asks on the controlling terminal, once per run: the same
// answer is reused for every host that needs it, so a fleet does not mean
// a hundred prompts. Without a terminal it fails instead of hanging.
func passwordPrompt(what string) func(target string) (string, error) {
	var once sync.Once
	var pw string
	var err error
	return func(target string) (string, error) {
		once.Do(func() { pw, err = readPassword(what + ": ") })
		return pw, err
	}
}

func readPassword(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", errors.New("a password was asked for but there is no terminal to ask on")
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return string(b), nil
}
