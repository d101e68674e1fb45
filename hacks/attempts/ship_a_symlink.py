"""Ships a symbolic link to the root folder inside the candidate itself, as a way out of its workspace."""

from hacklib import honest

honest()
