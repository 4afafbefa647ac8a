package runtime

import "github.com/lodge-containers/lodge/shim"

// What the daemon reads and speaks of a container's monitor lives in the
// shim package (the monitor's long-lived half links nothing else); these
// names keep the daemon's view of it in one package.

type (
	// MonitorConfig is what the daemon hands a container's monitor.
	MonitorConfig = shim.MonitorConfig
	// ExitStatus is how a container ended, as its monitor recorded it.
	ExitStatus = shim.ExitStatus
	// AttachRequest opens an attach connection.
	AttachRequest = shim.AttachRequest
	// InitProc is a container's init as known without its monitor.
	InitProc = shim.InitProc
	// LocalEntry is one decoded message of a local-format log.
	LocalEntry = shim.LocalEntry
	// FrameWriter writes everything it is given as frames of one stream.
	FrameWriter = shim.FrameWriter
)

// Log formats, output streams and the exit that nobody saw.
const (
	LogLocal          = shim.LogLocal
	LogNone           = shim.LogNone
	StreamStdin       = shim.StreamStdin
	StreamStdout      = shim.StreamStdout
	StreamStderr      = shim.StreamStderr
	ExitUnknownReason = shim.ExitUnknownReason
)

// ErrInitGone means the container's init process has ended.
var ErrInitGone = shim.ErrInitGone

// Functions of the monitor's protocol and files; see the shim package.
var (
	AttachSocket = shim.AttachSocket
	CtlSocket    = shim.CtlSocket
	WriteFrame   = shim.WriteFrame
	ReadFrame    = shim.ReadFrame
	EncodeLocal  = shim.EncodeLocal
	DecodeLocal  = shim.DecodeLocal
	RotatedLogs  = shim.RotatedLogs
	StartTime    = shim.StartTime
	OutputFiles  = shim.OutputFiles
)
