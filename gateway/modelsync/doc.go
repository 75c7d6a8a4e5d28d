// Package modelsync is the gateway side of Shelfgate's model update
// protocol (docs/model-sync.md): signed manifests (Manifest, Envelope,
// Policy.VerifyOffer), resumable block transfers persisted in a SQLite
// state file (Transfer), and the model directory with its active model,
// rollback slot and anti-rollback version (Store). Syncer ties them
// together behind two downlink handlers, Offer and Block, and publishes
// block requests and status through a consumer-side Requester.
//
// Key files (ed25519, PKCS#8/PKIX PEM or OpenSSH) are read by
// ParsePrivateKey and ParsePublicKey.
package modelsync
