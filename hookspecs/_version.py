"""The version of the contract: these hook specifications and types, and ``contracts/``."""

# Semantic versioning (see the README's compatibility policy and CHANGELOG.md): a minor version
# adds, a major one may remove or change. Its major version is the ``v1`` of the schemas' $id.
CONTRACT_VERSION = "1.4.0"
