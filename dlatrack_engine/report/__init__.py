"""What people look at after a job: the side-by-side preview video and the evaluation report."""
