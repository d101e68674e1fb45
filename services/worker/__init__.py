"""The Worker: claims one queued proposal at a time, runs it in a sandbox, reports what the harness graded."""
