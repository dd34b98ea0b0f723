"""The audit log: every stored event is a leaf of an RFC 6962 Merkle tree.

- `hashing`: the leaf encoding and the RFC 6962 hashes (standard library only).
- `proofs`: inclusion and consistency proof verification, RFC 9162 (standard library only).
- `tree`: roots and proofs built from stored leaf hashes and cached subtree hashes.
- `note`: C2SP signed notes and tlog checkpoints with Ed25519 (`cryptography` only).
- `store`: the leaf, node and checkpoint tables; leaves are written with the events.
- `verifier`: recompute every leaf and root from the stored events.
- `evidence`: evidence bundles for one certificate, and consistency bundles.
- `service`: the log key, checkpoints and proofs of a ledger.
- `verify_bundle`: the standalone offline verifier (`python -m ledger.audit.verify_bundle`).
"""
