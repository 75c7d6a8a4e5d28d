package modelsync

import "errors"

// Sentinel errors, checked with errors.Is. Every rejection of an offer,
// block or model wraps exactly one of them, with the field and value.
var (
	// ErrMalformed: an offer, manifest or request that does not parse or
	// breaks a field rule.
	ErrMalformed = errors.New("malformed")
	// ErrUnknownKey: the offer's signer key id is not a trusted key.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrBadSignature: the signature does not verify with the named key,
	// or the model file's own signature is bad, missing or untrusted.
	ErrBadSignature = errors.New("bad signature")
	// ErrTarget: the manifest is not addressed to this site and gateway.
	ErrTarget = errors.New("not addressed to this gateway")
	// ErrRollback: the manifest's version is not above the highest
	// version this gateway ever installed.
	ErrRollback = errors.New("version not above the installed one")
	// ErrTooLarge: the model is longer than the configured maximum, or the
	// file is over the engine's size or compute budget.
	ErrTooLarge = errors.New("too large")
	// ErrClockNotSet: the clock is before the configured floor (no RTC,
	// no NTP yet); the offer waits and is retried, it is not rejected.
	ErrClockNotSet = errors.New("clock not set")
	// ErrExpired: the manifest's expiry has passed; no new install, the
	// running model keeps running.
	ErrExpired = errors.New("manifest expired")
	// ErrNoSpace: the filesystem of the model directory has too little
	// free space to stage the model.
	ErrNoSpace = errors.New("not enough free disk space")
	// ErrCorruptBlock: a block payload that does not parse or whose bytes
	// do not match its SHA-256; it is dropped and requested again.
	ErrCorruptBlock = errors.New("corrupt block")
	// ErrNoTransfer: a block for no transfer in progress, or for another
	// version.
	ErrNoTransfer = errors.New("no matching transfer")
	// ErrHashMismatch: the assembled file's SHA-256 or length is not the
	// manifest's.
	ErrHashMismatch = errors.New("file hash mismatch")
	// ErrModel: the staged file is not a model this gateway can run
	// (the model package's sentinel is wrapped too: model.ErrGoldenMismatch,
	// model.ErrTruncated, ...), or it names another model or version than
	// its manifest.
	ErrModel = errors.New("model rejected")
	// ErrTransferFailed: the transfer stopped after the configured number
	// of request rounds went unanswered.
	ErrTransferFailed = errors.New("transfer failed")
	// ErrRejectedBefore: the offer is for a file already rejected.
	ErrRejectedBefore = errors.New("file rejected before")
	// ErrNotPromoted: the Evaluator (shadow evaluation) refused the
	// verified candidate.
	ErrNotPromoted = errors.New("candidate not promoted")
	// ErrNoPrevious: rollback asked with no previous model to go back to.
	ErrNoPrevious = errors.New("no previous model")
	// ErrHealthCheck: a promoted model failed its check after promotion
	// (it did not load into the classifier, or its health check failed)
	// and was rolled back.
	ErrHealthCheck = errors.New("health check failed")
)
