package keylock

import (
	"sync"
	"testing"
)

func TestLockSerialisesOneKeyAndForgetsIt(t *testing.T) {
	var (
		m  Map
		wg sync.WaitGroup
		// One counter per key, guarded by nothing but that key's lock: a
		// gap shows as lost updates, and under -race as a race.
		counter = map[string]*int{"a": new(int), "b": new(int)}
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			unlock := m.Lock(key)
			defer unlock()
			n := *counter[key]
			*counter[key] = n + 1
		}()
	}
	wg.Wait()
	if *counter["a"] != 100 || *counter["b"] != 100 {
		t.Errorf("counts %d and %d, want 100 each: updates were lost", *counter["a"], *counter["b"])
	}
	if n := m.held(); n != 0 {
		t.Errorf("%d keys still have a mutex after every unlock", n)
	}
}

func TestOtherKeysDoNotWait(t *testing.T) {
	var m Map
	unlockA := m.Lock("a")
	defer unlockA()
	done := make(chan struct{})
	go func() { m.Lock("b")(); close(done) }()
	<-done // would hang (and time the test out) if b waited for a
}
