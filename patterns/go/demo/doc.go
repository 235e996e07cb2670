// Package demo holds the lab's demonstrations: programs that do what one of the
// article's claims says about the Go runtime, so that the claim is answered by what the
// runtime did rather than by a measurement. Each is one small `package main` file:
//
//	done_after_add     wg.Done() once more than wg.Add(): "Done() called more times
//	                   than Add() panics the runtime"
//	add_after_wait     wg.Add(1) inside the goroutines, one of them after wg.Wait() has
//	                   started, under the race detector: "WaitGroup.Add() called after
//	                   Wait() has started is a race"
//	add_while_waiting  beside it, the legal case the claim's wording also covers: a
//	                   counted goroutine adds a sub-task (Add before its go statement, on
//	                   a non-zero counter) while wg.Wait() is blocked
//
// scripts/demos.py builds and runs them (make demos; make bench writes demos.json) and
// claims.py turns what happened into the claims' verdicts (the "demonstration" kind,
// docs/analysis.md). demo_test.go builds each program and checks it behaves as claimed.
package demo
