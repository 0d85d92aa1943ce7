package fleet

import (
	"net"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// hostUser is the account layout of README.md ("Fleet mode: NATS accounts") for one host, as a
// nats-server user: it may publish to its own bucket's subjects and the JetStream API calls that
// create, read and watch buckets, and may not purge or delete a stream, nor write another bucket.
func hostUser(host string) *server.User {
	own := "KV_" + Bucket(host)
	return &server.User{
		Username: host, Password: "secret-" + host,
		Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{
				Allow: []string{
					"$KV." + Bucket(host) + ".>",   // its own keys
					"$JS.API.INFO",                 // account info
					"$JS.API.STREAM.CREATE." + own, // its own bucket, once
					"$JS.API.STREAM.INFO.*",        // open buckets, its own and its peers'
					"$JS.API.STREAM.NAMES",         // find the peers' buckets
					"$JS.API.STREAM.LIST",          //
					"$JS.API.STREAM.MSG.GET.*",     // read keys
					"$JS.API.DIRECT.GET.>",         //
					"$JS.API.CONSUMER.CREATE.*.>",  // watch buckets (ordered consumers)
					"$JS.API.CONSUMER.CREATE.*",    //
					"$JS.API.CONSUMER.DELETE.*.*",  // and stop watching
					"$JS.API.CONSUMER.INFO.*.*",    //
					"$JS.FC.>",                     // flow control of those consumers
					"$JS.ACK.>",                    //
					"_INBOX.>",                     // replies
				},
				Deny: []string{
					"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.UPDATE.>",
					"$JS.API.STREAM.MSG.DELETE.>",
				},
			},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", "$KV.>"}},
		},
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func itoa(n int) string { return strconv.Itoa(n) }
