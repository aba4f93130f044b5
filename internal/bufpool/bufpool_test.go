package bufpool

import "testing"

func TestGetPut(t *testing.T) {
	tests := []struct {
		n, capacity int
	}{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {4096, 4096}, {65537, 131072},
		{1 << 24, 1 << 24}, {1<<24 + 1, 1<<24 + 1},
	}
	for _, tt := range tests {
		b := Get(tt.n)
		if len(*b) != tt.n || cap(*b) != tt.capacity {
			t.Errorf("Get(%d): len %d cap %d, want cap %d", tt.n, len(*b), cap(*b), tt.capacity)
		}
		Put(b)
	}
}

func TestPutDropsOddBuffers(t *testing.T) {
	odd := make([]byte, 1000)
	Put(&odd) // not a class size: dropped, not returned by Get(1000)
	for range 10 {
		if b := Get(1000); cap(*b) != 1024 {
			t.Fatalf("Get(1000) returned a buffer of capacity %d", cap(*b))
		}
	}
}

func TestGetPutAllocatesNothingWhenWarm(t *testing.T) {
	Put(Get(8192))
	if n := testing.AllocsPerRun(100, func() { Put(Get(8192)) }); n != 0 {
		t.Errorf("Get and Put allocate %v times", n)
	}
}
