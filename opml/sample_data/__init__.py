"""The bundled Bank Marketing sample; see README.md in this folder for its source and licence."""
