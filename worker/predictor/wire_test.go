package predictor

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

func TestDecodeReplyMatrix(t *testing.T) {
	want := []float64{1.5, -2, math.Inf(1), 0, math.SmallestNonzeroFloat64, 42}
	data := make([]byte, 8*len(want))
	for i, v := range want {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(v))
	}
	res, err := decodeReply([]byte(`{"ok":true,"columns":["a","b"],"rows":3,"dtype":"f8"}`), data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if res.Values[i] != want[i] {
			t.Fatalf("value %d = %v, want %v", i, res.Values[i], want[i])
		}
	}
	data[0] = 0 // the result must not alias the frame buffer
	if res.Values[0] != 1.5 {
		t.Error("values alias the frame buffer")
	}
	if _, err := decodeReply([]byte(`{"ok":true,"columns":["a","b"],"rows":4,"dtype":"f8"}`), data); err == nil {
		t.Error("short matrix accepted")
	}
	if n := testing.AllocsPerRun(100, func() { decodeFloat64s(data) }); n != 1 {
		t.Errorf("decodeFloat64s allocates %v times, want 1", n)
	}
}

func TestDecodeReplyError(t *testing.T) {
	_, err := decodeReply([]byte(`{"ok":false,"status":418,"message":"teapot","user_error":true}`), nil)
	var me *ModelError
	if !errors.As(err, &me) || me.Status != 418 || me.Message != "teapot" || !me.UserError {
		t.Fatalf("got %#v", err)
	}
}

func TestParseBridgeRecord(t *testing.T) {
	level, msg, args, ok := parseBridgeRecord([]byte(`{"@level":"warn","@message":"hi","b":1,"a":"x"}`))
	if !ok || level.String() != "warn" || msg != "hi" || len(args) != 4 || args[0] != "a" || args[2] != "b" {
		t.Fatalf("got %v %q %v %v", level, msg, args, ok)
	}
	if _, _, _, ok := parseBridgeRecord([]byte(`{"user": "json"}`)); ok {
		t.Error("user JSON taken for a bridge record")
	}
}
