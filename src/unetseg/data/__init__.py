"""Files to arrays: pairing, checking, splitting, class maps, decoding, masks, resizing, tiles."""
