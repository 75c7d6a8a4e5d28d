-- EMQX 5 rule engine examples for a Shelfgate fleet (docs/operations.md,
-- "Clustered broker"). Create them in the dashboard (Integration > Rules) or
-- with `emqx ctl` / the REST API, each with an action of your choice.

-- 1. A gateway publishing under another gateway's id: the topic's gateway
--    level differs from the login. The ACL (emqx-acl.conf) already refuses
--    the publish; this rule makes the attempt visible (action: republish to
--    an alerting topic, or a webhook).
SELECT clientid, username, topic, peerhost
FROM "shelfgate/v1/+/+/telemetry", "shelfgate/v1/+/+/events"
WHERE nth(4, split(topic, '/')) != username

-- 2. Gateway offline: the retained status (birth, last will, clean
--    shutdown) says offline. Action: webhook to the on-call system.
SELECT topic, payload.gateway as gateway, payload.site as site, payload.state as state, payload.reason as reason
FROM "shelfgate/v1/+/+/status"
WHERE payload.state = 'offline'

-- 3. Session takeover: the same client id connected again while connected,
--    the sign of two gateways with one gateway.id (each takes the session
--    of the other every few seconds). Action: webhook; count per clientid.
SELECT clientid, username, peername, reason
FROM "$events/client_disconnected"
WHERE reason = 'takenover' and regex_match(clientid, '^shelfgate-')
