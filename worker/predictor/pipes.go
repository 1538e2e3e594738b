package predictor

import (
	"fmt"
	"os"
)

// childPipes are the four pipes between a worker and its predictor: requests (the child's
// fd 3), replies (fd 4), stdout and stderr. Each is created close-on-exec; the child gets
// its ends through exec.Cmd, and the parent closes them once the child has started, so EOF
// on a parent end means the child (and anything it forked that kept the fd) is gone.
type childPipes struct {
	reqR, reqW *os.File
	repR, repW *os.File
	outR, outW *os.File
	errR, errW *os.File
}

func openChildPipes() (*childPipes, error) {
	var c childPipes
	for _, pair := range []struct {
		name string
		r, w **os.File
	}{
		{"request", &c.reqR, &c.reqW},
		{"reply", &c.repR, &c.repW},
		{"stdout", &c.outR, &c.outW},
		{"stderr", &c.errR, &c.errW},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			c.closeChildEnds()
			c.closeParentEnds()
			return nil, fmt.Errorf("%s pipe: %w", pair.name, err)
		}
		*pair.r, *pair.w = r, w
	}
	return &c, nil
}

func (c *childPipes) closeChildEnds() { closeFiles(c.reqR, c.repW, c.outW, c.errW) }

func (c *childPipes) closeParentEnds() { closeFiles(c.reqW, c.repR, c.outR, c.errR) }

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
