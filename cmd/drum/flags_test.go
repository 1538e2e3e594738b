package main

import (
	"strings"
	"testing"
)

func TestNormaliseArgs(t *testing.T) {
	cases := map[string]string{
		"drum server --class-labels a b c --address x:1":       "drum server --class-labels a --class-labels b --class-labels c --address x:1",
		"drum server --class-labels a":                         "drum server --class-labels a",
		"drum server --address x:1 --class-labels a b":         "drum server --address x:1 --class-labels a --class-labels b",
		"drum score --class-labels=a --input f":                "drum score --class-labels=a --input f",
		"drum server --target-type multiclass --max-workers 2": "drum server --target-type multiclass --max-workers 2",
	}
	for in, want := range cases {
		if got := strings.Join(normaliseArgs(strings.Fields(in)), " "); got != want {
			t.Errorf("normaliseArgs(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
