package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfake trusts its clients: it allocates whatever length a request's first
// four bytes claim, up to 4 GiB, and it panics on a request of an unknown
// type (a nil request from kmsg.RequestForKey), which kills the process that
// runs it: daprun, and with it every process of the run. Any local user can
// connect to the broker's port, so every connection is guarded: a request
// reaches kfake only whole, of a known type and version, and not larger
// than maxRequest; anything else closes the connection.
const (
	// maxRequest bounds one Kafka request. Dapr's producers send events of
	// about a MB at most (Sarama's default MaxMessageBytes); 4 MiB leaves
	// room for batches.
	maxRequest = 4 << 20
	// requestTimeout bounds the time a request may take to arrive once its
	// length is read, so that a client cannot hold a buffer by trickling.
	requestTimeout = 30 * time.Second
)

// guardedListen is kfake's listen function: net.Listen, with every accepted
// connection guarded.
func guardedListen(network, address string) (net.Listener, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return guardedListener{l}, nil
}

type guardedListener struct{ net.Listener }

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c}, nil
}

// guardedConn hands kfake one checked request at a time (length prefix
// included); kfake's writes go to the client unchanged.
type guardedConn struct {
	net.Conn
	pending bytes.Buffer // kfake reads from one goroutine per connection
}

// errRefused ends a connection whose request the guard refused.
var errRefused = errors.New("broker: request refused")

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.pending.Len() == 0 {
		if err := c.next(); err != nil {
			if errors.Is(err, errRefused) {
				_ = c.Conn.Close()
			}
			return 0, err
		}
	}
	return c.pending.Read(p)
}

// next reads the client's next request into pending, or refuses it.
func (c *guardedConn) next() error {
	var size [4]byte
	if _, err := io.ReadFull(c.Conn, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	// api key, version, correlation ID, client ID's length: 10 bytes at least.
	if n < 10 || n > maxRequest {
		return errRefused
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(requestTimeout))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	c.pending.Reset()
	c.pending.Write(size[:])
	// Copied as it arrives: memory follows what the client really sent, not
	// what it claimed.
	if _, err := io.CopyN(&c.pending, c.Conn, int64(n)); err != nil {
		return err
	}
	body := c.pending.Bytes()[4:]
	key, version := int16(binary.BigEndian.Uint16(body)), int16(binary.BigEndian.Uint16(body[2:]))
	req := kmsg.RequestForKey(key)
	if req == nil || version < 0 || version > req.MaxVersion() {
		c.pending.Reset()
		return errRefused
	}
	return nil
}
