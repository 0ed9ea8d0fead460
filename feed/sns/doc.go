// Package sns lets freshen's webhook accept S3 event notifications
// delivered by an Amazon SNS HTTP(S) subscription: it parses the SNS
// envelope, verifies the message signature against the certificate SNS
// names, and confirms a subscription by fetching its SubscribeURL.
//
// It must never fetch a URL taken from a message unless the URL is https
// and its host matches Config.AllowedHosts (redirects included): a message
// is attacker-controlled input until its signature has been verified, and
// following its URLs blindly would make the webhook an SSRF proxy. For the
// same reason it never confirms anything but a SubscriptionConfirmation,
// and never confirms one whose signature failed when Config.Verify is set.
//
// What a verified signature proves is that Amazon SNS sent the message, not
// that it came from the topic the operator meant: anyone can subscribe the
// webhook to their own topic. Callers that care should check TopicArn.
//
// The package does not decode the S3 event inside Message; s3event does.
package sns
