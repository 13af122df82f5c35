// Package etcdtest starts real etcd servers for tests: an embedded one in
// the test process (Start, StartServer: fresh, loopback, random ports, data
// in t.TempDir(), gone at cleanup) and an external cluster of Debian's etcd
// binary (StartCluster). Servers can be stopped and restarted on the same
// ports and data to prove that clients keep their state through an outage
// and catch up afterwards.
//
// Everything listens on 127.0.0.1 only; external processes are killed by
// PID at cleanup.
package etcdtest
