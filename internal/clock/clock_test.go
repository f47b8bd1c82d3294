package clock

import (
	"testing"
	"time"
)

func TestFakeTicker(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	tk := f.NewTicker(time.Minute)
	f.Advance(59 * time.Second)
	select {
	case <-tk.C():
		t.Fatal("ticked before its period")
	default:
	}
	f.Advance(time.Second)
	select {
	case at := <-tk.C():
		if !at.Equal(time.Unix(1060, 0)) {
			t.Fatalf("ticked at %v", at)
		}
	default:
		t.Fatal("did not tick after its period")
	}
	f.Advance(10 * time.Minute) // many periods: one tick
	<-tk.C()
	select {
	case <-tk.C():
		t.Fatal("queued more than one tick")
	default:
	}
	tk.Stop()
	if n := f.Tickers(); n != 0 {
		t.Fatalf("%d tickers after Stop", n)
	}
	f.Advance(time.Hour)
	select {
	case <-tk.C():
		t.Fatal("stopped ticker ticked")
	default:
	}
}
