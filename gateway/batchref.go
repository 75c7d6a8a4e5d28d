package gateway

// BatchRef names one batch the uplink sent: the rows of Class with
// Lo <= id <= Hi (Lo is the lane's cursor + 1 when the batch was read, Hi the
// last id it carried), and Tag, a message authentication code over class, Lo
// and Hi that only the gateway can compute. A consumer acknowledgement
// echoes a BatchRef; the gateway deletes rows for it only if the tag checks
// out, so a consumer can confirm only batches the gateway made and only the
// rows they carried.
type BatchRef struct {
	Class  Class
	Lo, Hi int64
	Tag    string
}
