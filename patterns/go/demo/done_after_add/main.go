// What it is: the claim "Done() called more times than Add() panics the runtime", done:
// two calls counted with wg.Add(2), each calls wg.Done(), and one more wg.Done()
// follows, as a goroutine with a stray `defer wg.Done()` would.
//
// Where it rots: the third Done takes the counter below zero.
//
// What to watch: the process dies with "panic: sync: negative WaitGroup counter" and
// exit status 2; nothing recovers it, so what a reader sees is what the runtime does.
package main

import (
	"fmt"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	wg.Add(2)
	for i := 0; i < 2; i++ {
		go func() { defer wg.Done() }()
	}
	wg.Wait()
	wg.Done() // ROTS HERE: a third Done for two Adds
	fmt.Println("done_after_add: no panic: the counter went below zero silently")
}
