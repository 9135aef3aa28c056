"""dlatrack_engine.fit"""
