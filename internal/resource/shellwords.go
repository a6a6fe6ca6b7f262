package resource

import "strings"

// plainWords splits a command= string into words when /bin/sh would do
// nothing but split it: no expansion, redirection, pipe, glob, quoting
// subtlety, assignment, comment, keyword or builtin. Such a command runs
// directly, saving the shell's fork and exec per step (measured in the
// README). Single-quoted words are taken literally, as sh does; anything
// else the shell might interpret returns ok=false and the command runs
// through /bin/sh -c as written.
func plainWords(command string) (words []string, ok bool) {
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(command); i++ {
		c := command[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(command[i+1:], '\'')
			if j < 0 {
				return nil, false
			}
			cur.WriteString(command[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case plainByte(c):
			cur.WriteByte(c)
			inWord = true
		default:
			return nil, false
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 || words[0] == "" || strings.ContainsRune(words[0], '=') || shellOnly[words[0]] {
		return nil, false
	}
	return words, true
}

// plainByte: bytes sh takes literally outside quotes. Not here: $ ` \ " ' ;
// & | < > ( ) * ? [ ] { } ~ # ! newline and other controls, and non-ASCII
// (a locale's idea of a blank is not ours).
func plainByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_./:=,+@%^", c) >= 0
}

// shellOnly names what only a shell can run as a first word (keywords and
// builtins that change the shell itself or have no program of their own),
// and builtins whose program twin behaves differently.
var shellOnly = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "case": true, "esac": true,
	"for": true, "while": true, "until": true, "do": true, "done": true, "in": true, "function": true,
	"select": true, "time": true, "coproc": true,
	".": true, "source": true, "cd": true, "exit": true, "export": true, "unset": true, "set": true,
	"eval": true, "exec": true, "readonly": true, "local": true, "return": true, "shift": true,
	"break": true, "continue": true, "trap": true, "umask": true, "ulimit": true, "alias": true,
	"unalias": true, "read": true, "wait": true, "jobs": true, "fg": true, "bg": true, "hash": true,
	"type": true, "command": true, "getopts": true, "times": true, "echo": true, "printf": true,
}
