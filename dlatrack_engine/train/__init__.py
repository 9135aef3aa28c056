"""dlatrack_engine.train"""
