package monitorproto

import (
	"os"

	"golang.org/x/sys/unix"
)

// Assign is an early monitor's starter's side of its control socket ctl:
// it names the container the monitor keeps and passes it attach, the
// first attached client, if not nil. It closes ctl.
func Assign(ctl *os.File, id string, attach *os.File) error {
	defer ctl.Close()
	var oob []byte
	if attach != nil {
		oob = unix.UnixRights(int(attach.Fd()))
	}
	return unix.Sendmsg(int(ctl.Fd()), []byte(id), oob, nil, 0)
}

// Assigned is the early monitor's side of Assign on its control socket
// ctl (inherited as CtlFd), which it closes: it waits for its container's
// ID and first client; ok is false if the starter went away without
// sending them.
func Assigned(ctl *os.File) (id string, attach *os.File, ok bool, err error) {
	defer ctl.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return "", nil, false, err
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
			attach = os.NewFile(uintptr(fds[0]), "attach")
		}
	}
	return string(buf[:n]), attach, true, nil
}
