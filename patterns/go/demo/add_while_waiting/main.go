// What it is: the case the claim's wording also covers and sync allows: wg.Add(1) after
// wg.Wait() has started, called before its go statement by a goroutine the WaitGroup
// already counts (a call that starts a sub-call), so the counter is not zero when it
// runs. Build and run it with -race. It stands beside add_after_wait to show where the
// race is: in an Add that is not ordered before Wait, not in "after Wait started".
//
// Where it rots: nowhere; sync's documentation: "calls with a positive delta that occur
// when the counter is zero must happen before a Wait"; this one occurs at one.
//
// What to watch: no race report, exit status 0, Wait returns after the sub-call.
package main

import (
	"fmt"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond) // Wait has started by now
		wg.Add(1)                         // after Wait has started, on a counter of 1
		go func() {
			defer wg.Done()
			time.Sleep(10 * time.Millisecond)
		}()
	}()
	wg.Wait()
	fmt.Println("add_while_waiting: Wait returned after the sub-call")
}
