// Issue #13's PATCH-405 check: METHOD requests over h2c (prior knowledge, Go's own HTTP/2
// client) to a path that answers 405 (or 413) before reading the body; counts the requests that
// did not finish (an error, or no answer within 3 s). The token is the bootstrap token the
// server was started with (seald_ and 43 "T"s, as the tests use).
//
//	cd scripts/h2-early-answer && go build -o /tmp/h2-early-answer .
//	METHOD=PATCH /tmp/h2-early-answer http://127.0.0.1:8080 1000 2000 /readyz 16
//	  # arguments: url, requests, body bytes, path, concurrency
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	url := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	size, _ := strconv.Atoi(os.Args[3])
	path := os.Args[4]
	conc, _ := strconv.Atoi(os.Args[5])
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}}
	body := bytes.Repeat([]byte("a"), size)
	ok, failed, timedOut := 0, 0, 0
	errs := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			req, _ := http.NewRequestWithContext(ctx, os.Getenv("METHOD"), url+path, io.MultiReader(bytes.NewReader(body)))
			req.Header.Set("content-type", "application/json")
			req.Header.Set("authorization", "Bearer seald_TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT")
			res, err := client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				var b []byte
				b, err = io.ReadAll(res.Body)
				res.Body.Close()
				if err == nil && res.StatusCode == 405 || res.StatusCode == 413 && len(b) > 0 {
					ok++
					cancel()
					return
				}
			}
			if ctx.Err() != nil {
				timedOut++
			} else {
				failed++
			}
			if err != nil {
				errs[err.Error()]++
			}
			cancel()
		}()
	}
	wg.Wait()
	fmt.Printf("{\"n\":%d,\"bodyBytes\":%d,\"ok\":%d,\"failed\":%d,\"timedOut\":%d}\n", n, size, ok, failed, timedOut)
	for e, c := range errs {
		if len(e) > 160 {
			e = e[:160]
		}
		fmt.Printf("  %d x %s\n", c, e)
	}
}
