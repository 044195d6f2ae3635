"""Photos and titles -> a FEATURES folder: the open_clip encoder, photo loading, resumable chunks, embed/merge."""
