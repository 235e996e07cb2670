// What it is: the claim "WaitGroup.Add() called after Wait() has started is a race", in
// the form the mistake is usually written: each goroutine calls wg.Add(1) itself instead
// of before its go statement, so nothing orders the Adds before wg.Wait(). The timing is
// fixed: call 0 adds at once, main starts waiting 10 ms later, call 1 adds 10 ms after
// that, while Wait is blocked on call 0. Build and run it with -race.
//
// Where it rots: wg.Add(1) inside the goroutine. sync's contract is that an Add taking
// the counter from zero happens before Wait; the race detector models that as a read in
// Add against a write in Wait and reports the two when nothing orders them.
//
// What to watch: "WARNING: DATA RACE" between sync.(*WaitGroup).Add and
// sync.(*WaitGroup).Wait on stderr, and exit status 66 (GORACE's exitcode). Without
// -race the program ends normally: the mistake is silent.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		i := i
		go func() {
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			wg.Add(1) // ROTS HERE: inside the goroutine; call 1's runs after Wait has started
			defer wg.Done()
			time.Sleep(40 * time.Millisecond)
		}()
	}
	time.Sleep(10 * time.Millisecond)
	wg.Wait()
	fmt.Println("add_after_wait: Wait returned")
}
