package aardvarkconf

import (
	"strings"
	"testing"
)

// FuzzParse: no input makes the parser panic, and whatever it accepts
// formats back into text that parses to the same content.
func FuzzParse(f *testing.F) {
	for _, s := range netavarkFiles {
		f.Add(s)
	}
	f.Add("10.0.0.1 1.1.1.1,::1\nid 10.0.0.2,10.0.0.3 fd00::1 a,b,c 8.8.8.8\n")
	f.Add("\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		file, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		again, err := Parse(strings.NewReader(string(file.Bytes())), "fuzz")
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%q", err, file.Bytes())
		}
		if string(again.Bytes()) != string(file.Bytes()) {
			t.Fatalf("not stable:\n%q\n%q", file.Bytes(), again.Bytes())
		}
	})
}
