// Command liveness is the stand-in for registry.k8s.io/liveness: an HTTP
// server on :8080 whose /healthz answers 200 for the first 10 seconds after
// start and 500 after that, like the upstream liveness example's server.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		d := time.Since(started)
		if d > 10*time.Second {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "error: %v", d.Seconds())
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "liveness test server")
	})
	// As PID 1 of a container the process gets no default signal handling:
	// exit on TERM so that pods stop without waiting for the grace period.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		os.Exit(0)
	}()
	log.Printf("listening on :8080")
	log.Fatal(http.ListenAndServe(":8080", mux))
}
