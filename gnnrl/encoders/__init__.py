"""gnnrl.encoders"""
