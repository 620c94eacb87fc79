// Command etcd is the etcd server, as built by upstream's root main.go (go.etcd.io/etcd/v3).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
